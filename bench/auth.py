"""Benchmark of the security layer: password checks, login, and an authenticated page view.

Run: ``.venv/bin/python bench/auth.py [--database-url URL] [--rounds N]``. It builds a fresh
database (a temporary SQLite file by default), migrates it, seeds the demo agents, and prints
medians and 95th percentiles. Numbers go to docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")

from bench.fresh import demo_app  # noqa: E402


def _stats(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   (n={len(samples)})"


def _timed(fn, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    app, _url, _workdir = demo_app(args.database_url, prefix="guichet-bench-", LOGIN_RATE_LIMIT="100000 per minute")

    from app.security import passwords
    from app.seed import demo

    stored = passwords.hash_password(demo.DEMO_PASSWORD)

    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('://')[0]}")
    rounds = args.rounds
    print("argon2id verify (19 MiB, t=2, p=1)      ",
          _stats(_timed(lambda: passwords.verify_password(stored, demo.DEMO_PASSWORD), min(rounds, 50))))

    client = app.test_client()
    token_re = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

    def login_and_logout() -> None:
        token = token_re.search(client.get("/login").get_data(as_text=True)).group(1)
        response = client.post("/login", data={"login": "accueil.lyon", "password": demo.DEMO_PASSWORD,
                                               "csrf_token": token})
        assert response.status_code == 302
        client.delete_cookie("guichet_session")  # next round logs in afresh

    print("login (GET form + POST, argon2 included)", _stats(_timed(login_and_logout, min(rounds, 50))))

    token = token_re.search(client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"login": "accueil.lyon", "password": demo.DEMO_PASSWORD, "csrf_token": token})

    def home() -> None:
        assert client.get("/").status_code == 200

    home()
    print("authenticated page view (session check) ", _stats(_timed(home, rounds)))


if __name__ == "__main__":
    main()

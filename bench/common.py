"""What the HTTP benchmarks share: a gunicorn server on a database, a logged-in agent, percentiles."""
from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TZ", "UTC")

from app.seed.demo import DEMO_PASSWORD  # noqa: E402


def start_server(database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "FLASK_APP": "app:create_app",
           "GUICHET_INSTANCE_DIR": tempfile.mkdtemp(prefix="guichet-bench-search-")}
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--workers", "1", "--threads", "2",  # noqa: S603
                                "--keep-alive", "300", "--bind", f"127.0.0.1:{port}", "app:create_app()"],
                               cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


class Client:
    """A logged-in agent's browser, as far as the benchmark needs one."""

    def __init__(self, port: int, login: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.status: int | None = None  # of the last response
        self.headers: http.client.HTTPMessage | None = None
        token = csrf_token(self.get("/login"))
        body = urllib.parse.urlencode({"login": login, "password": DEMO_PASSWORD, "csrf_token": token})
        self.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        if "Camille" not in self.get("/") and "Bonjour" not in self.get("/"):
            raise SystemExit("could not log in")

    def request(self, method: str, path: str, body=None, headers=None) -> str:
        headers = {**(headers or {}), "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        self.status, self.headers = response.status, response.headers
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        return response.read().decode()

    def get(self, path: str) -> str:
        return self.request("GET", path)

    def post_form(self, path: str, fields: list[tuple[str, str]]) -> str:
        """POST fields (repeated names allowed) as a browser posts a form."""
        return self.request("POST", path, urllib.parse.urlencode(fields),
                            {"Content-Type": "application/x-www-form-urlencoded"})


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def logged_in_test_client(app, login: str):
    """Flask's test client of app, logged in as login (in process: for counting statements)."""
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"login": login, "password": DEMO_PASSWORD, "csrf_token": token})
    return client


@contextmanager
def recorded_statements(app) -> Iterator[list[tuple[str, float]]]:
    """A list that fills with (statement, seconds on the driver) for each SQL statement app sends meanwhile."""
    from sqlalchemy import event

    from app.db import db

    with app.app_context():
        engine = db.get_engine()
    statements: list[tuple[str, float]] = []

    def before(conn, _cursor, _statement, *_args):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn, _cursor, statement, *_args):
        statements.append((statement, time.perf_counter() - conn.info["bench_started"].pop()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


# The territory a party's contacts and dossiers are counted under, in SQL on a party aliased p: as
# app.contacts.links.territory_of_record places them (its commune, else its first contract's premises).
PARTY_TERRITORY_SQL = """coalesce(p.territory_id,
                               (SELECT sp.territory_id FROM contract_party cp
                                JOIN contract c ON c.id = cp.contract_id
                                JOIN service_point sp ON sp.id = c.service_point_id
                                WHERE cp.party_id = p.id AND sp.territory_id IS NOT NULL
                                ORDER BY c.id LIMIT 1))"""


def bulk_fill_engine(database_url: str, script: str, count: int, chunk: int):
    """The engine of a PostgreSQL-only set-based fill (its SQL is PostgreSQL's), after checking its sizes."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"{script} writes with PostgreSQL's SQL; {url.get_backend_name()} is not supported")
    if count < 1 or chunk < 1:
        raise SystemExit("--count and --chunk are positive")
    return create_engine(url)


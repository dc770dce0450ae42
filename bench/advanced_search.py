"""Benchmark of the advanced search's first page on an existing database (e.g. bench/seed.py's).

Run: ``.venv/bin/python bench/advanced_search.py URL``. For a front-desk agent of one agency and
for the administrator (everything), it runs a few searches twice and prints the second time:
the search itself (up to 1,001 ids in order, for the capped count) and the page's rows.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")
os.environ["GUICHET_INSTANCE_DIR"] = tempfile.mkdtemp(prefix="guichet-bench-")

from sqlalchemy import select  # noqa: E402

from app import create_app  # noqa: E402
from app.db import session  # noqa: E402
from app.search import advanced  # noqa: E402
from app.security.models import Agent  # noqa: E402

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "bench"})
CASES = [("parties", dict(status="customer")), ("parties", dict(overdue=True)), ("contracts", dict(kind="water")),
         ("contracts", dict(contract_status="active", kind="gas")), ("parties", dict(name="martin"))]
with app.app_context():
    for login in ("accueil.lyon", "admin"):
        agent = session.execute(select(Agent).where(Agent.login == login)).scalar_one()
        for mode, kw in CASES:
            c = advanced.Criteria(mode=mode, **kw)
            advanced.search(agent=agent, criteria=c)
            start = time.perf_counter()
            result = advanced.search(agent=agent, criteria=c)
            ms = (time.perf_counter() - start) * 1000
            print(f"{login:13} {mode:9} {kw}: {ms:8.1f} ms  count={result.count}")
            session.rollback()

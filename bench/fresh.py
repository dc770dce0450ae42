"""What the benchmarks share: the application on a fresh, migrated database with the demo set."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TZ", "UTC")


def demo_app(database_url: str | None, *, prefix: str, **config):
    """(app, url, workdir): the database at database_url (a temporary SQLite file by default)
    dropped, created, migrated and given the demo territories, roles and agents."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["GUICHET_INSTANCE_DIR"] = str(workdir)
    url = database_url or f"sqlite:///{workdir / 'bench.sqlite'}"

    from flask_migrate import upgrade

    from app import create_app
    from app.db import session
    from app.seed import demo
    from tests.conftest import recreate_database

    app = create_app({"SQLALCHEMY_DATABASE_URI": recreate_database(url), "SECRET_KEY": "bench", **config})
    with app.app_context():
        upgrade()
        demo.seed_demo()
        session.commit()
    return app, url, workdir

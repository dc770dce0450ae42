"""Shared fixtures: one migrated database per run, one rolled-back transaction per test.

The database is SQLite (a file in a temporary folder) unless GUICHET_TEST_DATABASE_URL names
another one, such as PostgreSQL; the suite runs unchanged on both.
"""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

os.environ.setdefault("TZ", "UTC")

from app import clock, create_app  # noqa: E402
from app.audit.context import AuditContext, set_context  # noqa: E402
from app.db import db  # noqa: E402
from app.db import session as db_session
from app.extensions import limiter  # noqa: E402

TEST_PASSWORD = "correct-horse-battery-staple"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def recreate_database(url: str) -> str:
    """Drop and create the database named by url (PostgreSQL) or its file (SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and os.path.exists(parsed.database):
            os.remove(parsed.database)
        return url
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return url


def database_url(tmp_path_factory, suffix: str = "") -> str:
    base = os.environ.get("GUICHET_TEST_DATABASE_URL")
    if base:
        parsed = make_url(base)
        return parsed.set(database=f"{parsed.database}{suffix}").render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / f'guichet{suffix}.sqlite'}"


def make_test_app(url: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "RATELIMIT_STORAGE_URI": os.environ.get("GUICHET_TEST_RATELIMIT_STORAGE_URI", "memory://"),
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return create_app(config)


def migrate_to_head(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The application on a freshly migrated test database."""
    os.environ.setdefault("GUICHET_INSTANCE_DIR", str(tmp_path_factory.mktemp("instance")))
    url = recreate_database(database_url(tmp_path_factory))
    application = make_test_app(url)
    migrate_to_head(application)
    yield application
    db.get_engine().dispose()


@pytest.fixture(autouse=True)
def _transaction(request, app):
    """Each test runs in one outer transaction that is rolled back at its end.

    The session joins it through SAVEPOINTs, so ``session.commit()`` (in a request or in the
    test) only releases a savepoint. No application context stays pushed: each request of the
    test client gets its own, with a fresh ``g`` and a fresh session, as in production.
    """
    if "no_db_transaction" in request.keywords:
        yield None
        return
    set_context(AuditContext(actor_label="test"))
    connection = db.get_engine().connect()
    outer = connection.begin()
    db_session.remove()
    db_session.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield connection
    finally:
        db_session.remove()
        db_session.configure(bind=db.get_engine())
        db_session.session_factory.kw.pop("join_transaction_mode", None)
        outer.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def _reset_rate_limits(app):
    with app.app_context():
        limiter.reset()
    yield


@pytest.fixture
def app_ctx(app):
    """An application context for tests that call services reading the configuration."""
    with app.app_context() as ctx:
        yield ctx


class FreshViewClient(FlaskClient):
    """A test client after whose requests the test's own session re-reads the database.

    Requests have their own sessions (one per application context); without this, the test's
    session would keep showing the objects as it last loaded them.
    """

    def open(self, *args, **kwargs):
        try:
            return super().open(*args, **kwargs)
        finally:
            db_session.expire_all()


@pytest.fixture(scope="session", autouse=True)
def _fresh_view_client(app):
    app.test_client_class = FreshViewClient


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def frozen_clock(monkeypatch):
    """Control of "now": ``frozen_clock.advance(minutes=31)`` moves every business rule's time."""

    class FrozenClock:
        def __init__(self) -> None:
            self.current = clock.now()

        def now(self):
            return self.current

        def advance(self, **delta) -> None:
            self.current += timedelta(**delta)

    frozen = FrozenClock()
    monkeypatch.setattr(clock, "now", frozen.now)
    return frozen


def statements_sent(client, url: str):
    """(response, SQL statements) of a GET of url, after a warm-up GET of it (caches filled); the
    test harness's savepoints aside."""
    client.get(url)
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            sent.append(statement)

    engine = db.get_engine()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(url)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return response, sent


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


class Auth:
    """Logs a test client in and out through the real login form."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, login: str, password: str = TEST_PASSWORD, follow: bool = False):
        page = self.client.get("/login")
        token = csrf_token(page.get_data(as_text=True))
        return self.client.post(
            "/login", data={"login": login, "password": password, "csrf_token": token}, follow_redirects=follow
        )

    def logout(self):
        page = self.client.get("/")
        token = csrf_token(page.get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def login_as(app, auth):
    """``login_as("accueil", territories=[t])`` creates an agent with that role and logs in as it."""
    from tests.factories import AgentFactory, role_with

    def _login_as(role_code: str = "admin", *, territories=(), permissions=None, **agent_fields):
        role = role_with(role_code, permissions)
        agent = AgentFactory(roles=[role], territories=list(territories), **agent_fields)
        response = auth.login(agent.login)
        assert response.status_code == 302, response.get_data(as_text=True)
        return agent

    return _login_as


# Departments whose postal codes the ``postal_codes`` fixture loads: the demo territories' and a few more.
POSTAL_CODE_DEPARTMENTS = ("69", "42", "01", "38", "06", "13", "75")
# And single postal codes: 62760 serves two communes named Thièvres (62814 in the Pas-de-Calais, 80756 in the Somme).
POSTAL_CODES_ALSO = ("62760",)


@pytest.fixture(scope="session")
def _postal_code_rows():
    """The reference rows of POSTAL_CODE_DEPARTMENTS, read once per run from the npm package."""
    from app.parties.addresses import DEFAULT_POSTAL_CODE_FILE, read_postal_code_file

    if not DEFAULT_POSTAL_CODE_FILE.exists():
        pytest.fail(f"{DEFAULT_POSTAL_CODE_FILE} is missing: run `make assets` (npm ci) first")
    return [row for row in read_postal_code_file(DEFAULT_POSTAL_CODE_FILE)
            if row["postal_code"][:2] in POSTAL_CODE_DEPARTMENTS or row["postal_code"] in POSTAL_CODES_ALSO]


@pytest.fixture
def postal_codes(_transaction, _postal_code_rows):
    """The postal code reference of a few departments (69, 42, 01, 38, 06, 13, 75) and 62760, in the test's
    transaction; returns the loaded rows ({postal_code, insee_code, commune, routing_label})."""
    from app.parties.addresses import replace_postal_codes

    replace_postal_codes(_postal_code_rows)
    db_session.commit()
    return _postal_code_rows

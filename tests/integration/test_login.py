"""Login: one message for every refusal, lockout, rate limit, CSRF, session lifetime."""
from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import session
from app.security.models import Agent, AgentSession
from tests.conftest import TEST_PASSWORD, csrf_token
from tests.factories import AgentFactory, role_with

REFUSAL = "Identification impossible : identifiant ou mot de passe incorrect."


def _refusal_page(response) -> str:
    """The page without its per-request CSRF token, to compare refusals byte for byte."""
    return re.sub(r'value="[^"]*"', "", response.get_data(as_text=True))


def test_successful_login_opens_a_session_and_audits_it(client, auth):
    agent = AgentFactory(roles=[role_with("accueil")])
    response = auth.login(agent.login)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert agent.full_name in home.get_data(as_text=True)
    assert session.execute(select(AgentSession).where(AgentSession.agent_id == agent.id)).scalar_one()
    actions = session.execute(
        select(AuditEntry.action).where(AuditEntry.object_type == "agent", AuditEntry.object_id == str(agent.id))
    ).scalars().all()
    assert "login" in actions


def test_wrong_password_unknown_login_and_locked_account_look_the_same(app, client, auth, frozen_clock):
    agent = AgentFactory()
    locked = AgentFactory()
    locked.locked_until = frozen_clock.now().replace(year=frozen_clock.now().year + 1)
    session.commit()

    wrong_password = auth.login(agent.login, "not-the-password")
    unknown_login = auth.login("nobody-by-that-name", "whatever-password")
    locked_account = auth.login(locked.login, TEST_PASSWORD)  # right password, but locked

    for response in (wrong_password, unknown_login, locked_account):
        assert response.status_code == 200
        assert REFUSAL in response.get_data(as_text=True)
    assert _refusal_page(wrong_password) == _refusal_page(unknown_login) == _refusal_page(locked_account)

    reasons = session.execute(
        select(AuditEntry.changes).where(AuditEntry.action == "login.failed").order_by(AuditEntry.id)
    ).scalars().all()
    assert [r["reason"] for r in reasons] == ["bad_password", "unknown_login", "locked"]


def test_lockout_engages_after_repeated_failures_and_releases(app, client, auth, frozen_clock):
    agent = AgentFactory()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert auth.login(agent.login, "bad-password-again").status_code == 200
    assert session.get(Agent, agent.id).locked_until is not None

    # Locked: even the right password is refused, with the same message.
    response = auth.login(agent.login, TEST_PASSWORD)
    assert response.status_code == 200
    assert REFUSAL in response.get_data(as_text=True)

    frozen_clock.advance(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1)
    response = auth.login(agent.login, TEST_PASSWORD)
    assert response.status_code == 302
    agent = session.get(Agent, agent.id)
    assert agent.failed_logins == 0 and agent.locked_until is None


def test_rate_limit_engages_per_address_and_releases(app, client, auth, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per 2 seconds")
    agent = AgentFactory()
    statuses = [auth.login(agent.login, "wrong-password-x").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "Trop de tentatives" in auth.login(agent.login).get_data(as_text=True)
    # Another address is not limited by the first one's attempts.
    other = app.test_client()
    token = csrf_token(other.get("/login").get_data(as_text=True))
    response = other.post("/login", data={"login": agent.login, "password": TEST_PASSWORD, "csrf_token": token},
                          environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 302
    time.sleep(2.2)  # the window passes: the first address may try again
    assert auth.login(agent.login).status_code == 302


def test_post_without_csrf_token_is_refused(client, login_as):
    agent = AgentFactory()
    response = client.post("/login", data={"login": agent.login, "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "formulaire a expiré" in response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] in response.get_data(as_text=True)  # a reference to quote

    login_as("admin")
    response = client.post("/logout")
    assert response.status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_a_session_cookie_planted_before_login_never_becomes_authenticated(app, client, auth):
    """Session fixation: an attacker's pre-login cookie, given to the victim, stays anonymous."""
    agent = AgentFactory()
    client.get("/login")
    planted = client.get_cookie("guichet_session").value
    assert auth.login(agent.login).status_code == 302
    assert client.get_cookie("guichet_session").value != planted
    attacker = app.test_client()
    attacker.set_cookie("guichet_session", planted)
    response = attacker.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_login_opens_a_new_server_session(client, auth):
    agent = AgentFactory()
    auth.login(agent.login)
    auth.logout()
    auth.login(agent.login)
    sessions = session.execute(
        select(AgentSession).where(AgentSession.agent_id == agent.id).order_by(AgentSession.created_at)
    ).scalars().all()
    assert len(sessions) == 2
    assert sessions[0].end_reason == "logout" and sessions[1].ended_at is None


def test_logout_ends_the_session_on_the_server(client, auth):
    agent = AgentFactory()
    auth.login(agent.login)
    stolen_cookie = client.get_cookie("guichet_session").value
    assert auth.logout().status_code == 302
    client.set_cookie("guichet_session", stolen_cookie)  # replaying the old cookie does not work
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_idle_timeout_ends_the_session(app, client, auth, frozen_clock):
    agent = AgentFactory()
    auth.login(agent.login)
    frozen_clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    frozen_clock.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    ended = session.execute(select(AgentSession).where(AgentSession.agent_id == agent.id)).scalar_one()
    assert ended.end_reason == "idle_timeout"


def test_absolute_timeout_ends_an_active_session(app, client, auth, frozen_clock):
    agent = AgentFactory()
    auth.login(agent.login)
    for _ in range(40):  # active every 20 minutes, past 12 hours
        frozen_clock.advance(minutes=20)
        response = client.get("/")
        if response.status_code != 200:
            break
    assert response.status_code == 302
    ended = session.execute(select(AgentSession).where(AgentSession.agent_id == agent.id)).scalar_one()
    assert ended.end_reason == "absolute_timeout"
    assert ended.ended_at - ended.created_at > app.config["SESSION_ABSOLUTE_TIMEOUT"]


def test_deactivating_an_agent_ends_its_sessions_at_once(app, client, auth):
    agent = AgentFactory()
    auth.login(agent.login)
    assert client.get("/").status_code == 200

    admin_client = app.test_client()
    from tests.conftest import Auth

    admin = AgentFactory(roles=[role_with("admin")])
    Auth(admin_client).login(admin.login)
    page = admin_client.get(f"/admin/agents/{agent.id}")
    response = admin_client.post(f"/admin/agents/{agent.id}/deactivate",
                                 data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302

    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # and logging in again is refused with the usual message
    assert REFUSAL in auth.login(agent.login).get_data(as_text=True)


def test_session_cookie_flags_and_security_headers(client, auth):
    agent = AgentFactory()
    response = auth.login(agent.login)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"


def test_secure_cookie_and_hsts_when_served_over_https(app, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    agent = AgentFactory()
    https_client = app.test_client()
    token = csrf_token(https_client.get("/login", base_url="https://localhost").get_data(as_text=True))
    # Over HTTPS, the CSRF check also requires a same-origin Referer, as browsers send it.
    response = https_client.post("/login", base_url="https://localhost",
                                 headers={"Referer": "https://localhost/login"},
                                 data={"login": agent.login, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("target,expected", [
    ("/admin/agents?q=x", "/admin/agents?q=x"),
    ("//evil.example/", "/"),
    ("/%09/evil.example/", "/"),
    ("/%0d%0a/evil.example/", "/"),
    ("/\\evil.example/", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
])
def test_login_redirects_only_to_local_pages(client, auth, target, expected):
    agent = AgentFactory()
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post("/login", query_string={"next": target.replace("%09", "\t").replace("%0d%0a", "\r\n")},
                           data={"login": agent.login, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == expected


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/admin/agents")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.no_db_transaction
def test_parallel_wrong_passwords_are_each_counted(app):
    """Eight simultaneous wrong passwords on one account: five failures lock it, none is lost."""
    from sqlalchemy import delete

    from app.audit.context import AuditContext, set_context
    from app.security.sessions import authenticate

    with app.app_context():
        agent = AgentFactory(login="parallel.target")
        agent_id = agent.id
    barrier = threading.Barrier(8)
    errors = []

    def attempt():
        try:
            with app.app_context():
                set_context(AuditContext())
                barrier.wait()
                assert authenticate(login="parallel.target", password="wrong-password!!") is None
                session.commit()
        except Exception as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        reasons = sorted(session.execute(
            select(AuditEntry.changes["reason"].as_string())
            .where(AuditEntry.action == "login.failed", AuditEntry.object_id == str(agent_id))
        ).scalars())
        assert reasons == ["bad_password"] * 4 + ["bad_password_locked"] + ["locked"] * 3
        assert session.get(Agent, agent_id).locked_until is not None
    finally:
        session.rollback()
        session.execute(delete(AuditEntry).where(AuditEntry.object_id == str(agent_id)))
        session.execute(delete(Agent.__table__).where(Agent.__table__.c.id == agent_id))
        session.commit()

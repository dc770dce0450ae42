"""Browser journeys: gunicorn serving a migrated, seeded database; Playwright driving Chromium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import database_url, recreate_database

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("GUICHET_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


@contextmanager
def serving(tmp_path_factory, suffix: str):
    """gunicorn serving a database of its own (named with suffix), migrated, deployed and seeded."""
    instance = tmp_path_factory.mktemp(f"e2e-instance{suffix}")
    env = {
        **os.environ,
        "DATABASE_URL": recreate_database(database_url(tmp_path_factory, suffix=suffix)),
        "GUICHET_INSTANCE_DIR": str(instance),
        "FLASK_APP": "app:create_app",
        "SECRET_KEY": "e2e-secret",
        # The journeys log in a dozen times within a minute from one address (the production
        # limit, 10 a minute, is tested in tests/integration/test_login.py).
        "LOGIN_RATE_LIMIT": "200 per minute",
        "TZ": "UTC",
    }
    for command in (["db", "upgrade"], ["processes", "deploy"], ["documents", "deploy"], ["seed"],
                    ["import", str(ROOT / "tests/data/billing")],
                    ["import", str(ROOT / "tests/data/journey")]):
        subprocess.run([str(BIN / "flask"), *command], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{port}",
         "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The base URL of the application served by gunicorn, as in production, on demo data."""
    with serving(tmp_path_factory, "_e2e") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    context.close()

"""Settings, read from environment variables here and nowhere else."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _env_bool(name: str, default: bool) -> bool:
    return (_env(name, "1" if default else "0") or "").lower() in {"1", "true", "yes", "on"}


def instance_dir() -> Path:
    """Where the embedded default keeps its files (SQLite databases, secret key, beat schedule)."""
    path = Path(_env("GUICHET_INSTANCE_DIR", str(PROJECT_ROOT / "instance")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret_key(environment: str) -> str:
    key = _env("SECRET_KEY")
    if key:
        return key
    if environment == "production":
        raise RuntimeError("SECRET_KEY must be set when GUICHET_ENV=production")
    # Embedded default: one key shared by web, worker and beat, kept across restarts.
    key_file = instance_dir() / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _time_of_day(name: str, default: str) -> str:
    """An "HH:MM" setting, checked at start: a typo would otherwise surface as beat failing to start."""
    value = _env(name, default)
    hour, colon, minute = value.partition(":")
    if not (colon and hour.isdigit() and minute.isdigit() and len(minute) == 2 and 0 <= int(hour) <= 23
            and 0 <= int(minute) <= 59):
        raise RuntimeError(f"{name} must be a time of day as HH:MM (for example 06:30), not {value!r}")
    return f"{int(hour):02d}:{minute}"


def _transport_options(broker_url: str) -> dict:
    """Redis hands an unacknowledged task (its worker died) to another worker after
    CELERY_VISIBILITY_TIMEOUT seconds. No task is scheduled further ahead (no ETA, no countdown),
    so none re-runs in a loop; a dunning chunk takes seconds. (The embedded broker takes no such
    option: a task lost with its worker there is handed out again by the jobs that look for work.)"""
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": _env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    return {}


def from_env() -> dict:
    """Build the Flask configuration mapping from the process environment."""
    environment = _env("GUICHET_ENV", "development")
    embedded_db = f"sqlite:///{instance_dir() / 'guichet.sqlite'}"
    embedded_broker = f"sqla+sqlite:///{instance_dir() / 'celery-broker.sqlite'}"
    https = _env_bool("GUICHET_HTTPS", environment == "production")
    ratelimit_storage = _env("RATELIMIT_STORAGE_URI", "memory://")
    if environment == "production" and ratelimit_storage.startswith("memory"):
        # In memory, each web process counts alone: the limit would multiply by their number.
        raise RuntimeError("RATELIMIT_STORAGE_URI must name a shared store (redis://…) in production")
    return {
        "GUICHET_ENV": environment,
        "SECRET_KEY": _secret_key(environment),
        "SQLALCHEMY_DATABASE_URI": _env("DATABASE_URL", embedded_db),
        "SQLALCHEMY_ECHO": _env_bool("SQLALCHEMY_ECHO", False),
        "CELERY": {
            "broker_url": _env("CELERY_BROKER_URL", embedded_broker),
            "task_ignore_result": True,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": _transport_options(_env("CELERY_BROKER_URL", embedded_broker)),
            "timezone": "UTC",
            "beat_schedule_filename": str(instance_dir() / "celerybeat-schedule"),
        },
        # When the daily dunning run starts ("HH:MM", the agency's time zone); run by hand: flask dunning run.
        "DUNNING_AT": _time_of_day("DUNNING_AT", "06:30"),
        # Contracts per chunk of a dunning run (one Celery task each, one transaction per contract).
        "DUNNING_CHUNK_SIZE": _env_int("DUNNING_CHUNK_SIZE", 200),
        # How often the beat job looks for due process timers, in seconds.
        "PROCESS_TIMER_SECONDS": _env_int("PROCESS_TIMER_SECONDS", 5),
        # Fault injection for the reliability tests only (e.g. "timer_after_fire"): never set in production.
        "FAULT_INJECTION": _env("GUICHET_FAULT_INJECTION"),
        # Rate limiting: Redis in production, process memory on the embedded default.
        "RATELIMIT_STORAGE_URI": ratelimit_storage,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_RATE_LIMIT": _env("LOGIN_RATE_LIMIT", "10 per minute"),
        "API_RATE_LIMIT": _env("API_RATE_LIMIT", "600 per minute"),  # per API token
        "LOGIN_MAX_FAILURES": _env_int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_MINUTES": _env_int("LOGIN_LOCK_MINUTES", 15),
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=_env_int("SESSION_IDLE_MINUTES", 30)),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=_env_int("SESSION_ABSOLUTE_HOURS", 12)),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_env_int("SESSION_ABSOLUTE_HOURS", 12)),
        "SESSION_COOKIE_NAME": "guichet_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_DEFAULT_TIMEZONE": _env("GUICHET_TIMEZONE", "Europe/Paris"),
        "LANGUAGES": ("fr", "en"),
        # The largest request body (a template upload, an API call): bigger ones are refused (413)
        # before they are read.
        "MAX_CONTENT_LENGTH": _env_int("MAX_REQUEST_MB", 16) * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session, which has its own timeouts
        "ORGANISATION_NAME": _env("GUICHET_ORGANISATION", "Régie des Eaux et de l'Énergie"),
        # The letterhead of generated letters and mails.
        "ORGANISATION_ADDRESS_1": _env("ORGANISATION_ADDRESS_1", "12 quai des Régies"),
        "ORGANISATION_ADDRESS_2": _env("ORGANISATION_ADDRESS_2", "69002 Lyon"),
        "ORGANISATION_PHONE": _env("ORGANISATION_PHONE", "04 72 00 00 00"),
        "ORGANISATION_EMAIL": _env("ORGANISATION_EMAIL", "service.clients@regie.example"),
        # PDF copies of generated letters through LibreOffice: "auto" (when installed) or "off".
        "DOCUMENT_PDF": _env("DOCUMENT_PDF", "auto"),
        "SOFFICE": _env("SOFFICE", "soffice"),
        "PDF_TIMEOUT_SECONDS": _env_int("PDF_TIMEOUT_SECONDS", 60),
        **_mail_settings(),
        **_billing_settings(),
        **_privacy_settings(),
    }


def _retention_days(name: str, default: int) -> int:
    """A retention period in days, checked at start: a typo must not anonymise everybody (or nobody)."""
    value = _env(name, str(default))
    if not value.isdigit() or int(value) < 30:
        raise RuntimeError(f"{name} must be a whole number of days, at least 30 (for example {default}), "
                           f"not {value!r}")
    return int(value)


def _privacy_settings() -> dict:
    """Retention of personal data (app/privacy/retention.py): after these many days without a
    contract and without activity, the daily job anonymises prospects and former customers."""
    return {
        # A prospect with no contract and no contact, dossier or change for that long (3 years).
        "PRIVACY_PROSPECT_RETENTION_DAYS": _retention_days("PRIVACY_PROSPECT_RETENTION_DAYS", 1095),
        # A former customer whose contracts all ended that long ago, with no activity since (5 years).
        "PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS": _retention_days("PRIVACY_FORMER_CUSTOMER_RETENTION_DAYS", 1825),
        # When the daily retention run starts ("HH:MM", the agency's time zone): at night.
        "PRIVACY_RETENTION_AT": _time_of_day("PRIVACY_RETENTION_AT", "03:15"),
    }


def _billing_settings() -> dict:
    """The connector to the billing system's affaires (app/integration/connector.py, contract in
    docs/integration.md): BILLING_API_URL is its base URL (http or https); unset, the connector is
    off and dossiers are not mirrored."""
    url = _env("BILLING_API_URL")
    if url and not url.startswith(("http://", "https://")):
        raise RuntimeError("BILLING_API_URL must be an http:// or https:// URL")
    return {
        "BILLING_API_URL": url,
        "BILLING_API_TOKEN": _env("BILLING_API_TOKEN"),
        "BILLING_TIMEOUT_SECONDS": _env_int("BILLING_TIMEOUT_SECONDS", 10),
        "BILLING_RETRY_SECONDS": _env_int("BILLING_RETRY_SECONDS", 15),  # doubled after each failed attempt…
        "BILLING_RETRY_MAX_SECONDS": _env_int("BILLING_RETRY_MAX_SECONDS", 300),  # …up to this
        "BILLING_SYNC_SECONDS": _env_int("BILLING_SYNC_SECONDS", 10),  # how often beat sends due calls
    }


def _mail_settings() -> dict:
    """The outbox (app/mails): SMTP_URL is smtp://[user:password@]host[:port][?starttls=1] or
    smtps://…; unset, mails wait in the outbox, queued."""
    smtp_url = _env("SMTP_URL")
    if smtp_url:
        from app.mails.smtp import parse_url

        try:
            parse_url(smtp_url)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
    return {
        "SMTP_URL": smtp_url,
        "SMTP_TIMEOUT": _env_int("SMTP_TIMEOUT", 30),  # seconds, for each exchange with the server
        "MAIL_FROM": _env("MAIL_FROM", "Guichet <guichet@localhost.localdomain>"),
        "MAIL_MESSAGE_ID_DOMAIN": _env("MAIL_MESSAGE_ID_DOMAIN"),  # default: MAIL_FROM's domain
        "MAIL_MAX_ATTEMPTS": _env_int("MAIL_MAX_ATTEMPTS", 8),
        "MAIL_RETRY_SECONDS": _env_int("MAIL_RETRY_SECONDS", 30),  # doubled after each failed attempt…
        "MAIL_RETRY_MAX_SECONDS": _env_int("MAIL_RETRY_MAX_SECONDS", 3600),  # …up to this
        # A mail left "sending" longer than this by a worker that died is sent again (same Message-ID):
        # longer than any SMTP conversation can last with SMTP_TIMEOUT.
        "MAIL_CLAIM_SECONDS": _env_int("MAIL_CLAIM_SECONDS", 600),
        "MAIL_DELIVER_AT_ONCE": _env_bool("MAIL_DELIVER_AT_ONCE", True),  # a mail written by an agent
        "MAIL_DELIVERY_SECONDS": _env_int("MAIL_DELIVERY_SECONDS", 10),  # how often beat looks for due mails
    }

"""The Celery application. Tasks run inside the Flask application context, one commit each.

Start a worker with ``celery -A workers.main worker`` and the scheduler with
``celery -A workers.main beat``; the broker is ``CELERY_BROKER_URL`` (Redis in
production, a SQLite file through kombu's SQLAlchemy transport on the embedded default).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask

BEAT_SCHEDULE = {
    "purge-login-sessions": {"task": "workers.tasks.purge_login_sessions", "schedule": timedelta(minutes=15)},
    # Process timers: due ones fire within this interval (PROCESS_TIMER_SECONDS); a run that finds
    # nothing costs one indexed query. Expires so that runs queued while workers were down do not pile up.
    "fire-process-timers": {"task": "workers.tasks.fire_due_timers", "schedule": timedelta(seconds=5),
                            "options": {"expires": 30}},
    # The mail outbox: due mails (and those a dead worker left "sending") go out within this interval
    # (MAIL_DELIVERY_SECONDS).
    "deliver-mails": {"task": "workers.tasks.deliver_mails", "schedule": timedelta(seconds=10),
                      "options": {"expires": 60}},
    # Calls to the billing system (affaires): due ones are sent within this interval (BILLING_SYNC_SECONDS).
    "sync-affaires": {"task": "workers.tasks.sync_affaires", "schedule": timedelta(seconds=10),
                      "options": {"expires": 60}},
    # Letters written in mass (dunning) get their PDF in batches; their mails wait for it.
    "convert-letters": {"task": "workers.tasks.convert_letters", "schedule": timedelta(seconds=20),
                        "options": {"expires": 60}},
    # The daily dunning run, at DUNNING_AT (local time of the agency), set in celery_init_app.
    "dunning-run": {"task": "workers.tasks.dunning_run", "options": {"expires": 3600}},
    # Chunks of a run lost with their worker (a broker that does not redeliver) are handed out again.
    "dunning-resume": {"task": "workers.tasks.dunning_resume", "schedule": timedelta(minutes=5),
                       "options": {"expires": 300}},
    # GDPR retention: prospects and former customers past their retention period are anonymised,
    # nightly at PRIVACY_RETENTION_AT (local time), set in celery_init_app. Idempotent: a second run
    # finds nobody left.
    "privacy-retention": {"task": "workers.tasks.privacy_retention", "options": {"expires": 6 * 3600}},
}


class LocalNow:
    """"Now" in a time zone, for a crontab: a module-level class, so that beat can pickle the
    schedule into its state file (a lambda cannot be)."""

    def __init__(self, timezone: str) -> None:
        self.timezone = timezone

    def __call__(self) -> datetime:
        return datetime.now(ZoneInfo(self.timezone))


def _daily(at: str, timezone: str) -> crontab:
    """A crontab firing every day at "HH:MM" in the agency's time zone (summer time included)."""
    hour, _colon, minute = at.partition(":")
    return crontab(hour=int(hour), minute=int(minute or 0), nowfun=LocalNow(timezone))


def celery_init_app(app: Flask) -> Celery:
    """Bind a Celery application to the Flask app (tasks get its context and its database)."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            from app.audit.context import set_actor
            from app.db import session

            with app.app_context():
                set_actor(actor_id=None, actor_label=f"task:{self.name}")
                try:
                    result = self.run(*args, **kwargs)
                    session.commit()
                    return result
                except BaseException:
                    session.rollback()
                    raise

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    schedule = {name: dict(entry) for name, entry in BEAT_SCHEDULE.items()}
    schedule["fire-process-timers"]["schedule"] = timedelta(seconds=app.config["PROCESS_TIMER_SECONDS"])
    schedule["deliver-mails"]["schedule"] = timedelta(seconds=app.config["MAIL_DELIVERY_SECONDS"])
    schedule["sync-affaires"]["schedule"] = timedelta(seconds=app.config["BILLING_SYNC_SECONDS"])
    schedule["dunning-run"]["schedule"] = _daily(app.config["DUNNING_AT"], app.config["BABEL_DEFAULT_TIMEZONE"])
    schedule["privacy-retention"]["schedule"] = _daily(app.config["PRIVACY_RETENTION_AT"],
                                                       app.config["BABEL_DEFAULT_TIMEZONE"])
    celery.conf.beat_schedule = schedule
    celery.conf.imports = ("workers.tasks",)
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


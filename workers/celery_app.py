"""The Celery application. Tasks run inside the Flask application context, one commit each.

Start a worker with ``celery -A workers.main worker`` and the scheduler with
``celery -A workers.main beat``; the broker is ``CELERY_BROKER_URL`` (Redis in
production, a SQLite file through kombu's SQLAlchemy transport on the embedded default).
"""
from __future__ import annotations

from datetime import timedelta

from celery import Celery, Task
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
}


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
    celery.conf.beat_schedule = schedule
    celery.conf.imports = ("workers.tasks",)
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


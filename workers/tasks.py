"""Celery tasks: a few lines each, taking ids, calling one service, idempotent."""
from celery import shared_task


@shared_task(name="workers.tasks.purge_login_sessions")
def purge_login_sessions() -> dict[str, int]:
    """End login sessions past their timeouts; forget ended ones past retention."""
    from app.security.sessions import purge_sessions

    return purge_sessions()


@shared_task(name="workers.tasks.fire_due_timers")
def fire_due_timers() -> int:
    """Fire the process timers that are due, each under its instance's lock, one commit each."""
    import os

    from flask import current_app

    from app.processes.service import fire_due_timers as fire

    after_fire = None
    if current_app.config.get("FAULT_INJECTION") == "timer_after_fire":
        def after_fire():  # the worker dies after stepping, before saving: the fault tests kill it here
            os._exit(9)
    return fire(after_fire=after_fire)

"""Celery tasks: a few lines each, taking ids, calling one service, idempotent."""
from celery import shared_task


@shared_task(name="workers.tasks.purge_login_sessions")
def purge_login_sessions() -> dict[str, int]:
    """End login sessions past their timeouts; forget ended ones past retention."""
    from app.security.sessions import purge_sessions

    return purge_sessions()

"""Celery tasks: a few lines each, taking ids, calling one service, idempotent."""
from celery import shared_task


@shared_task(name="workers.tasks.purge_login_sessions")
def purge_login_sessions() -> dict[str, int]:
    """End login sessions past their timeouts; forget ended ones past retention."""
    from app.security.sessions import purge_sessions

    return purge_sessions()


def _fault(point: str):
    """Fault injection for the reliability tests: when GUICHET_FAULT_INJECTION names this point
    ("timer_after_fire": after stepping an instance, before saving it; "mail_after_send": after the
    SMTP server accepted a mail, before marking it sent; "affaire_after_call": after the billing
    system answered, before the commit), a hook that kills the worker there; None otherwise."""
    import os

    from flask import current_app

    if current_app.config.get("FAULT_INJECTION") == point:
        return lambda: os._exit(9)
    return None


@shared_task(name="workers.tasks.fire_due_timers")
def fire_due_timers() -> int:
    """Fire the process timers that are due, each under its instance's lock, one commit each."""
    from app.processes.service import fire_due_timers as fire

    return fire(after_fire=_fault("timer_after_fire"))


@shared_task(name="workers.tasks.deliver_mails")
def deliver_mails() -> dict[str, int]:
    """Send the due mails of the outbox over SMTP, one commit each (app.mails.outbox)."""
    from app.mails.outbox import deliver_due

    return deliver_due(after_send=_fault("mail_after_send"))


@shared_task(name="workers.tasks.deliver_mail")
def deliver_mail(mail_id: int) -> str | None:
    """Send this mail now if it is still due (queued from the web: no need to wait for beat)."""
    from app.mails.outbox import deliver

    return deliver(mail_id, after_send=_fault("mail_after_send"))


@shared_task(name="workers.tasks.sync_affaires")
def sync_affaires() -> dict[str, int]:
    """Send the due calls to the billing system (affaires), one commit each, in order per dossier
    (app.integration.connector); nothing when the connector is off."""
    from app.integration import connector

    if not connector.enabled():
        return {}
    return connector.deliver_due(after_call=_fault("affaire_after_call"))

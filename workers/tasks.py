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


def _mail_fault():
    """Fault injection for the reliability tests ("mail_after_send": the worker dies after the SMTP
    server accepted a mail, before marking it sent); None otherwise."""
    import os

    from flask import current_app

    if current_app.config.get("FAULT_INJECTION") == "mail_after_send":
        return lambda: os._exit(9)
    return None


@shared_task(name="workers.tasks.deliver_mails")
def deliver_mails() -> dict[str, int]:
    """Send the due mails of the outbox over SMTP, one commit each (app.mails.outbox)."""
    from app.mails.outbox import deliver_due

    return deliver_due(after_send=_mail_fault())


@shared_task(name="workers.tasks.deliver_mail")
def deliver_mail(mail_id: int) -> str | None:
    """Send this mail now if it is still due (queued from the web: no need to wait for beat)."""
    from app.mails.outbox import deliver

    return deliver(mail_id, after_send=_mail_fault())


@shared_task(name="workers.tasks.sync_affaires")
def sync_affaires() -> dict[str, int]:
    """Send the due calls to the billing system (affaires), one commit each, in order per dossier
    (app.integration.connector); nothing when the connector is off."""
    import os

    from flask import current_app

    from app.integration import connector

    if not connector.enabled():
        return {}
    after_call = None
    if current_app.config.get("FAULT_INJECTION") == "affaire_after_call":
        def after_call():  # the worker dies after the billing system answered, before the commit
            os._exit(9)
    return connector.deliver_due(after_call=after_call)

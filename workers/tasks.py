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
    system answered, before the commit; "dunning_after_open": after a run opened a dossier, before
    its commit; "point:N" at the N-th pass only), a hook that kills the worker there; None otherwise."""
    import os

    from flask import current_app

    wanted, _colon, after = (current_app.config.get("FAULT_INJECTION") or "").partition(":")
    if wanted != point:
        return None
    if not after:
        return lambda: os._exit(9)
    calls = [0]  # "point:N": die at the N-th pass (the first N-1 commit): mid-way through a batch

    def hook() -> None:
        calls[0] += 1
        if calls[0] >= int(after):
            os._exit(9)

    return hook


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


@shared_task(name="workers.tasks.dunning_run")
def dunning_run(as_of: str | None = None) -> dict:
    """The daily dunning run (app.dunning.service): record the selection, then hand its chunks to the
    workers. A day that already has its run is not run again by the schedule (a run by hand may be)."""
    from datetime import date

    from app.dunning import service as dunning
    from app.parties.overview import local_today

    day = date.fromisoformat(as_of) if as_of else local_today()
    if dunning.run_of_day(day) is not None:
        return {"skipped": day.isoformat()}
    return dunning.dispatch(as_of=day, trigger="beat")


@shared_task(name="workers.tasks.dunning_chunk")
def dunning_chunk(run_id: int, chunk: int, contract_ids: list[int]) -> dict[str, int]:
    """Open the relaunch dossiers of one chunk of a run, one commit per contract; delivered again
    after a lost worker, it skips what it already did (app.dunning.service.run_chunk)."""
    from app.dunning.service import run_chunk

    return run_chunk(run_id, chunk, contract_ids, after_each=_fault("dunning_after_open"))


@shared_task(name="workers.tasks.dunning_resume")
def dunning_resume(older_than_seconds: int = 900) -> int:
    """Hand out again the chunks of a run whose worker was lost without the broker redelivering."""
    from datetime import timedelta

    from app.dunning.service import resume_stalled

    return resume_stalled(older_than=timedelta(seconds=older_than_seconds))


@shared_task(name="workers.tasks.convert_letters")
def convert_letters() -> int:
    """Convert to PDF the letters written in mass without one, a batch per LibreOffice start."""
    from app.documents.service import convert_pending

    return convert_pending()


@shared_task(name="workers.tasks.privacy_retention")
def privacy_retention() -> dict[str, int]:
    """Anonymise the prospects and former customers past their retention period (app.privacy.retention),
    one commit per party; a second run finds nobody left."""
    from app import clock
    from app.privacy import retention

    return retention.run(clock.now())

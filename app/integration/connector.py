"""The connector to the billing system's affaires: every dossier is mirrored by an affaire there.

Writers call ``enqueue_create`` when a dossier opens and ``enqueue_status`` when its status
changes: each writes one ``affaire_sync`` row in the same transaction, with its idempotency key
fixed there. ``deliver_due`` (the Celery beat task ``sync_affaires``) sends due rows one at a time,
each in its own transaction, over HTTP/JSON (docs/integration.md):

- per dossier in id order: a row waits while an earlier row of its dossier is not done, so a
  status is never pushed before its affaire exists, nor two statuses out of order;
- the row is locked while it is sent (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers
  share the work); a worker that dies after the billing system answered and before its commit
  leaves the row pending, and the next attempt carries the same key: the billing system answers
  it again without creating twice;
- a connection error, a timeout, a 5xx, 408 or 429 is retried with an exponential backoff
  (``BILLING_RETRY_SECONDS`` doubled up to ``BILLING_RETRY_MAX_SECONDS``), for as long as it
  takes: the dossier works meanwhile and its page says where the sync stands;
- any other 4xx is a refusal: the row is failed with the billing system's message, and holds the
  rows after it until a supervisor sends it again (``retry``).

With ``BILLING_API_URL`` empty the connector is off: nothing is written.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from app import clock
from app.audit import service as audit
from app.contracts.models import Contract
from app.db import backoff as db_backoff
from app.db import session, skip_locked
from app.dossiers.models import Dossier, DossierObject, DossierParty
from app.integration.models import AffaireSync, SyncAction, SyncStatus
from app.parties.models import Party

log = logging.getLogger(__name__)
RETRIED_STATUSES = {408, 429}
ERROR_MAX = 1000


def enabled() -> bool:
    return bool(current_app.config.get("BILLING_API_URL"))


# --- Writing ----------------------------------------------------------------------------------

def enqueue_create(dossier: Dossier) -> AffaireSync | None:
    """The call creating the dossier's affaire, written with the dossier (flush only)."""
    if not enabled():
        return None
    customers = session.execute(select(Party.number).distinct().join(DossierParty, DossierParty.party_id == Party.id)
                                .where(DossierParty.dossier_id == dossier.id).order_by(Party.number)).scalars()
    contracts = session.execute(select(Contract.number).join(DossierObject, DossierObject.object_id == Contract.id)
                                .where(DossierObject.dossier_id == dossier.id, DossierObject.object_type == "contract")
                                .order_by(Contract.number)).scalars()
    payload = {"dossier_reference": dossier.reference, "classification": dossier.dossier_type.code,
               "subject": dossier.subject, "status": dossier.status, "opened_at": dossier.created_at.isoformat(),
               "customers": list(customers), "contracts": list(contracts)}
    row = AffaireSync(dossier_id=dossier.id, action=SyncAction.CREATE, payload=payload,
                      idempotency_key=f"guichet-affaire-create-{dossier.reference}", status=SyncStatus.PENDING,
                      attempts=0, created_at=clock.now())
    session.add(row)
    session.flush()
    return row


def enqueue_status(dossier: Dossier) -> AffaireSync | None:
    """The call pushing the dossier's new status (flush only); its key names the dossier's version."""
    if not enabled():
        return None
    row = AffaireSync(dossier_id=dossier.id, action=SyncAction.STATUS,
                      payload={"status": dossier.status, "changed_at": clock.now().isoformat()},
                      idempotency_key=f"guichet-affaire-status-{dossier.reference}-v{dossier.version}",
                      status=SyncStatus.PENDING, attempts=0, created_at=clock.now())
    session.add(row)
    session.flush()
    return row


def retry(*, dossier_id: int) -> int:
    """A supervisor sends the dossier's refused calls again (after the data was corrected in the
    billing system); how many."""
    rows = session.execute(select(AffaireSync).where(AffaireSync.dossier_id == dossier_id,
                                                     AffaireSync.status == SyncStatus.FAILED)).scalars().all()
    for row in rows:
        row.status, row.next_attempt_at, row.last_error = SyncStatus.PENDING, clock.now(), None
    session.flush()
    return len(rows)


# --- Sending ----------------------------------------------------------------------------------

class CallFailed(Exception):
    def __init__(self, message: str, *, refused: bool):
        super().__init__(message)
        self.refused = refused  # True: the billing system said no (4xx); False: try again later


def _call(path: str, body: dict, key: str) -> dict:
    config = current_app.config
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": key}
    if config.get("BILLING_API_TOKEN"):
        headers["Authorization"] = f"Bearer {config['BILLING_API_TOKEN']}"
    # BILLING_API_URL is checked to be http(s) when the configuration is read.
    request = urllib.request.Request(config["BILLING_API_URL"].rstrip("/") + path, method="POST",  # noqa: S310
                                     data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=config["BILLING_TIMEOUT_SECONDS"]) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read(ERROR_MAX).decode("utf-8", "replace")
        refused = 400 <= exc.code < 500 and exc.code not in RETRIED_STATUSES
        raise CallFailed(f"HTTP {exc.code} : {detail}", refused=refused) from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise CallFailed(str(getattr(exc, "reason", exc)), refused=False) from None


def _send(row: AffaireSync) -> None:
    dossier = session.get(Dossier, row.dossier_id)
    if row.action == SyncAction.CREATE:
        answer = _call("/affaires", row.payload, row.idempotency_key)
        number = answer.get("affaire")
        if not isinstance(number, str) or not 0 < len(number) <= 40:
            raise CallFailed(_("réponse sans numéro d'affaire : %(answer)s", answer=answer), refused=True)
        # Written on the table, past the ORM's version counter: the dossier's version is the agents'
        # optimistic lock, and the number arriving must not make the page an agent has open
        # "modified by someone else". The audit entry is written here instead of by the flush.
        table = Dossier.__table__
        session.execute(update(table).where(table.c.id == dossier.id).values(external_ref=number))
        set_committed_value(dossier, "external_ref", number)
        audit.record("affaire_created", obj=dossier, data={"affaire": number})
    else:
        if not dossier.external_ref:  # cannot happen: the create row is done first
            raise CallFailed(_("l'affaire n'existe pas encore"), refused=False)
        _call(f"/affaires/{dossier.external_ref}/status", row.payload, row.idempotency_key)


def backoff(attempts: int) -> timedelta:
    return db_backoff(attempts, base_seconds=current_app.config["BILLING_RETRY_SECONDS"],
                      max_seconds=current_app.config["BILLING_RETRY_MAX_SECONDS"])


def _due(now: datetime):
    earlier = aliased(AffaireSync)
    blocked = exists().where(earlier.dossier_id == AffaireSync.dossier_id, earlier.id < AffaireSync.id,
                             earlier.status != SyncStatus.DONE)
    stmt = (select(AffaireSync)
            .where(AffaireSync.status == SyncStatus.PENDING,
                   or_(AffaireSync.next_attempt_at.is_(None), AffaireSync.next_attempt_at <= now), ~blocked)
            .order_by(AffaireSync.id).limit(1))
    return skip_locked(stmt, AffaireSync)


def deliver_one(now: datetime | None = None, after_call: Callable[[], None] | None = None) -> str | None:
    """Send the next due call, under its row's lock, and record the outcome (the caller commits):
    "done", "retry", "failed", or None when nothing is due. after_call: a fault-injection hook run
    once the billing system answered, before anything is recorded."""
    now = now or clock.now()
    row = session.execute(_due(now)).scalar_one_or_none()
    if row is None:
        return None
    row.attempts += 1
    try:
        _send(row)
    except CallFailed as exc:
        row.last_error = str(exc)[:ERROR_MAX]
        if exc.refused:
            row.status = SyncStatus.FAILED
            log.warning("affaire sync %s refused: %s", row.id, exc)
            return "failed"
        row.next_attempt_at = now + backoff(row.attempts)
        return "retry"
    if after_call is not None:
        after_call()
    row.status, row.done_at, row.last_error = SyncStatus.DONE, clock.now(), None
    return "done"


def deliver_due(*, limit: int = 200, after_call: Callable[[], None] | None = None) -> dict[str, int]:
    """Send due calls one transaction each until none is due (or limit); counts by outcome. A
    call to retry is not tried again in the same run, so a billing system that is down costs one
    timeout per dossier and run."""
    counts: dict[str, int] = {}
    now = clock.now()
    for _attempt in range(limit):
        try:
            outcome = deliver_one(now, after_call)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("affaire sync failed")
            break
        if outcome is None:
            break
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --- Reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncState:
    state: str  # "off", "pending", "failed", "done"
    number: str | None
    waiting: int = 0  # calls not sent yet
    attempts: int = 0  # of the first call not done
    next_attempt_at: datetime | None = None
    last_error: str | None = None


def state_of(dossier: Dossier) -> SyncState:
    """Where the mirror of this dossier stands, for its page."""
    rows = session.execute(select(AffaireSync).where(AffaireSync.dossier_id == dossier.id)
                           .order_by(AffaireSync.id)).scalars().all()
    open_rows = [r for r in rows if r.status != SyncStatus.DONE]
    if not rows:
        return SyncState("off" if not dossier.external_ref else "done", dossier.external_ref)
    if not open_rows:
        return SyncState("done", dossier.external_ref)
    first = open_rows[0]
    state = "failed" if first.status == SyncStatus.FAILED else "pending"
    return SyncState(state, dossier.external_ref, waiting=len(open_rows), attempts=first.attempts,
                     next_attempt_at=first.next_attempt_at, last_error=first.last_error)


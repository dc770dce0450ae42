"""Service-task operations that write to the records the process is about: ``update_party_field``
copies an answer into the customer's record (through the same checks as the agent's edit page),
``create_affaire`` makes sure the dossier's affaire is on its way to the billing system. Both run
under the instance lock, in the step's transaction; a refusal stops the step with its reason."""
from __future__ import annotations

from sqlalchemy import select

from app.db import session
from app.dossiers.models import Dossier
from app.errors import BusinessError
from app.integration import connector
from app.integration.models import AffaireSync, SyncAction
from app.parties import editing
from app.parties.models import Party
from app.processes import engine

# What a step may change on the customer, and how: the rest goes through an agent.
PARTY_FIELDS = ("email", "phone", "vulnerable")


def _party(data: dict) -> Party:
    party_id = (data.get("context") or {}).get("party_id")
    party = session.get(Party, party_id) if party_id else None
    if party is None:
        raise RuntimeError("le processus ne porte sur aucun interlocuteur")
    return party


def update_party_field(data: dict, params: dict) -> dict:
    """params: ``field`` (one of PARTY_FIELDS), ``value``. An e-mail or a phone becomes the party's
    first one (kept once); ``vulnerable`` takes a true or false value."""
    name, value = params.get("field"), params.get("value")
    if name not in PARTY_FIELDS:
        raise RuntimeError(f"champ « {name} » non modifiable par une étape (possibles : {', '.join(PARTY_FIELDS)})")
    party = _party(data)
    if name == "vulnerable":
        if not isinstance(value, bool):
            raise RuntimeError("« vulnerable » attend True ou False")
        changes = {}
        party.vulnerable = value
    elif not isinstance(value, str) or not value.strip():
        return {"field": name, "updated": False}  # nothing answered: nothing to copy
    elif name == "email":
        others = [e.address for e in party.emails if e.address.lower() != value.strip().lower()]
        changes = {"emails": [value.strip(), *others]}
    else:
        others = [{"number": p.number, "label": p.label} for p in party.phones]
        changes = {"phones": [{"number": value.strip(), "label": None}, *others]}
    if changes:
        try:
            plan = editing.plan_changes(party, changes)
        except BusinessError as exc:
            errors = getattr(exc, "errors", None) or {}
            raise RuntimeError(next(iter(errors.values()), exc.message)) from None
        if plan.phones is not None:  # the new number, normalised, first and once
            seen: set[str] = set()
            plan.phones = [p for p in plan.phones if not (p[0] in seen or seen.add(p[0]))]
        editing._apply(party, plan)
    session.flush()
    return {"field": name, "updated": True}


def create_affaire(data: dict, params: dict) -> dict:
    """The dossier's affaire in the billing system: queued once (opening a dossier queues it when
    the connector is configured; this step does it for a dossier opened before)."""
    dossier_id = (data.get("context") or {}).get("dossier_id")
    dossier = session.get(Dossier, dossier_id) if dossier_id else None
    if dossier is None:
        raise RuntimeError("le processus ne porte sur aucun dossier")
    if not connector.enabled():
        raise RuntimeError("aucun système de facturation n'est configuré (BILLING_API_URL)")
    queued = session.execute(select(AffaireSync.id).where(AffaireSync.dossier_id == dossier.id,
                                                          AffaireSync.action == SyncAction.CREATE)).first()
    if queued is None:
        connector.enqueue_create(dossier)
    return {"queued": queued is None}


def register() -> None:
    engine.register_operation("update_party_field", update_party_field)
    engine.register_operation("create_affaire", create_affaire)

"""What the codes stored in the database read as on screen, in the agent's language."""
from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

LABELS: dict[str, dict[str, object]] = {
    "party_status": {"prospect": _l("Prospect"), "customer": _l("Client"), "former_customer": _l("Ancien client")},
    "party_kind": {"person": _l("Particulier"), "organisation": _l("Professionnel")},
    "contract_status": {"active": _l("Actif"), "pending": _l("En cours de mise en service"),
                        "terminated": _l("Résilié")},
    "service_point_kind": {"electricity": _l("Électricité"), "gas": _l("Gaz"), "water": _l("Eau")},
    "contract_role": {"holder": _l("Titulaire"), "co_holder": _l("Co-titulaire"), "payer": _l("Payeur"),
                      "occupant": _l("Occupant"), "owner": _l("Propriétaire")},
    "phone_label": {"mobile": _l("mobile"), "home": _l("domicile"), "work": _l("travail")},
    # How the customer reached us: the contact channel (canal) chosen when a contact starts.
    "channel": {"phone": _l("Téléphone"), "front_desk": _l("Accueil physique"), "letter": _l("Courrier"),
                "email": _l("Courriel"), "web": _l("Internet / espace client")},
    "invoice_status": {"open": _l("À payer"), "paid": _l("Payée"), "partially_paid": _l("Partiellement payée"),
                       "cancelled": _l("Annulée")},
    "reading_kind": {"actual": _l("Réel"), "estimated": _l("Estimé"), "customer": _l("Autorelevé")},
    # The billing system's codes (app/seed/customers.py METHODS; "sepa" in bench/party_view.py).
    "payment_method": {"prelevement": _l("Prélèvement"), "sepa": _l("Prélèvement"), "carte": _l("Carte bancaire"),
                       "virement": _l("Virement"), "cheque": _l("Chèque"), "especes": _l("Espèces")},
}
CHANNELS = tuple(LABELS["channel"])


def label(value: str | None, kind: str) -> str:
    """The label of a stored code; the code itself when it has none."""
    if value is None:
        return "—"
    return str(LABELS[kind].get(value, value))


def choices(kind: str) -> list[tuple[str, str]]:
    return [(code, str(text)) for code, text in LABELS[kind].items()]


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = label

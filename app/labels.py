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
                "email": _l("Courriel"), "web": _l("Internet / espace client"), "sms": _l("SMS"),
                "field_visit": _l("Visite terrain")},
    "direction": {"in": _l("Entrant"), "out": _l("Sortant")},
    # The contract status as an eligibility rule sees it: "none" when there is no current contract.
    "rule_contract_status": {"active": _l("Actif"), "pending": _l("En cours de mise en service"),
                             "terminated": _l("Résilié"), "none": _l("Aucun contrat courant")},
    "party_link_role": {"customer": _l("Client"), "holder": _l("Titulaire"), "co_holder": _l("Co-titulaire"),
                        "payer": _l("Payeur"), "occupant": _l("Occupant"), "owner": _l("Propriétaire"),
                        "third_party": _l("Tiers")},
    "agent_link_role": {"emitter": _l("Émetteur"), "responsible": _l("Responsable"), "copy": _l("En copie")},
    "object_kind": {"contract": _l("Contrat"), "invoice": _l("Facture"), "meter_reading": _l("Relève"),
                    "service_point": _l("Point de desserte"), "meter": _l("Compteur")},
    "dunning_reason": {"already_open": _l("dossier de relance déjà ouvert"), "blocked": _l("relance bloquée"),
                       "payment_plan": _l("échéancier en cours"), "dispute": _l("facture contestée"),
                       "below_min": _l("sous le montant minimum"), "no_longer_due": _l("plus dû")},
    "dunning_outcome": {"opened": _l("ouvert"), "already_open": _l("déjà ouvert"), "no_longer_due": _l("plus dû"),
                        "failed": _l("en échec")},
    "run_status": {"running": _l("En cours"), "done": _l("Terminée"), "failed": _l("En échec")},
    "dossier_status": {"open": _l("Ouvert"), "in_progress": _l("En cours"), "suspended": _l("Suspendu"),
                       "closed": _l("Clos")},
    "process_status": {"running": _l("En cours"), "waiting": _l("En attente"), "completed": _l("Terminé"),
                       "error": _l("En erreur"), "cancelled": _l("Annulé")},
    "task_status": {"ready": _l("À faire"), "completed": _l("Faite"), "cancelled": _l("Annulée")},
    "dossier_origin": {"contact": _l("Depuis un contact"), "manual": _l("Manuelle"), "automatic": _l("Automatique")},
    "template_source": {
        "current_customer": _l("Le client courant"), "contract_holder": _l("Le titulaire du contrat courant"),
        "contract_co_holder": _l("Le co-titulaire du contrat courant"),
        "contract_payer": _l("Le payeur du contrat courant"),
        "contract_occupant": _l("L'occupant du contrat courant"),
        "contract_owner": _l("Le propriétaire du contrat courant"), "fixed_party": _l("Un interlocuteur désigné"),
        "current_agent": _l("L'agent connecté"), "fixed_agent": _l("Un agent désigné"),
        "role_in_territory": _l("Les agents d'un rôle sur le territoire"),
        "current_contract": _l("Le contrat courant"), "current_service_point": _l("Le point de desserte courant"),
        "current_meter": _l("Le compteur courant"), "last_invoice": _l("La dernière facture"),
        "last_reading": _l("La dernière relève"), "overdue_invoices": _l("Les factures impayées échues"),
    },
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

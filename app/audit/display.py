"""How audit entries read on screen: field and action names in the agent's language, values
formatted, secrets shown as changed."""
from __future__ import annotations

import re
from datetime import datetime

from flask import Flask
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.audit.service import MASK

FIELDS = {
    "login": _l("Identifiant"), "full_name": _l("Nom complet"), "email": _l("E-mail"), "language": _l("Langue"),
    "active": _l("Actif"), "roles": _l("Rôles"), "territories": _l("Territoires"),
    "password_hash": _l("Mot de passe"), "locked_until": _l("Verrouillé jusqu'à"), "reason": _l("Motif"),
    "status": _l("Statut"), "phones": _l("Téléphones"), "emails": _l("E-mails"),
    # Parties (the customer view's history shows which fields changed).
    "number": _l("N° client"), "kind": _l("Type"), "civility": _l("Civilité"), "first_name": _l("Prénom"),
    "last_name": _l("Nom"), "company_name": _l("Raison sociale"), "birth_date": _l("Date de naissance"),
    "vulnerable": _l("Client fragile"), "territory_id": _l("Territoire"), "street": _l("Adresse"),
    "address_extra": _l("Complément d'adresse"), "postal_code": _l("Code postal"), "city": _l("Commune"),
    "insee_code": _l("Code INSEE"), "external_ref": _l("Référence facturation"),
    "iban": _l("IBAN"), "bic": _l("BIC"), "anonymised_at": _l("Anonymisé le"),
    # Referentials, contacts and dossiers.
    "code": _l("Code"), "label": _l("Libellé"), "default_channel": _l("Canal par défaut"),
    "default_direction": _l("Sens par défaut"), "process_key": _l("Processus"),
    "dossier_type_id": _l("Classification"), "contact_type_id": _l("Type de contact"), "position": _l("Ordre"),
    "target_days": _l("Délai cible (jours)"), "items": _l("Modèle"), "source": _l("Source"),
    "link_role": _l("Rôle du lien"), "fixed_party_id": _l("Interlocuteur désigné"),
    "fixed_agent_id": _l("Agent désigné"), "role_id": _l("Rôle"), "rule": _l("Règle d'éligibilité"),
    "subject": _l("Objet"), "notes": _l("Notes"), "channel": _l("Canal"), "direction": _l("Sens"),
    "occurred_at": _l("Date du contact"), "duration_minutes": _l("Durée (minutes)"), "reference": _l("Référence"),
    "origin": _l("Origine"), "due_at": _l("À traiter avant"), "closed_at": _l("Clos le"),
    "created_by_id": _l("Créé par"), "created_at": _l("Créé le"), "parties": _l("Interlocuteurs"),
    "agents": _l("Agents"), "objects": _l("Objets métier"), "title": _l("Titre"), "body": _l("Texte"),
}
ACTIONS = {
    "create": _l("Création"), "update": _l("Modification"), "delete": _l("Suppression"),
    "login": _l("Connexion"), "login.failed": _l("Connexion refusée"), "logout": _l("Déconnexion"),
    "import": _l("Import"), "create_despite_duplicates": _l("Créé malgré des doublons possibles"),
    "link": _l("Liens enregistrés"), "create_from_contact": _l("Créé à partir d'un contact"),
    "move_contact": _l("Contact rattaché"), "moved_to_dossier": _l("Rattaché à un dossier"),
    "add_note": _l("Note ajoutée"), "generate_letter": _l("Courrier généré"),
    "affaire_created": _l("Affaire créée dans le SI facturation"),
    "queue_mail": _l("Mail mis en envoi"), "mail_sent": _l("Mail envoyé"),
    "dunning_level": _l("Niveau de relance appliqué"), "start": _l("Lancement"),
    "anonymise": _l("Anonymisé (données personnelles effacées)"),
    "privacy_export": _l("Export des données personnelles (droit d'accès)"),
    "reassign_task": _l("Tâche réaffectée"),
}
REASONS = {
    "bad_password": _l("mot de passe erroné"), "bad_password_locked": _l("mot de passe erroné, compte verrouillé"),
    "unknown_login": _l("identifiant inconnu"), "locked": _l("compte verrouillé"),
    "inactive": _l("compte désactivé"),
}
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def field_label(key: str) -> str:
    return str(FIELDS.get(key, key))


def action_label(action: str) -> str:
    return str(ACTIONS.get(action, action))


def value_label(value) -> str:
    """A dash for nothing, yes/no, lists joined, dates in local time, secrets as changed."""
    if value is None or value == []:
        return "—"
    if value == MASK:
        return _("(modifié)")
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, str) and ISO_DATETIME.match(value):
        return format_datetime(datetime.fromisoformat(value), "short")
    if isinstance(value, str) and value in REASONS:
        return str(REASONS[value])
    return str(value)


def actor_label(label: str | None) -> str:
    if not label:
        return "—"
    if label.startswith("anonymous:"):
        return _("tentative de connexion (%(login)s)", login=label.split(":", 1)[1])
    if label.startswith("cli:"):
        return _("ligne de commande (%(user)s)", user=label.split(":", 1)[1])
    return label


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(audit_field=field_label, audit_action=action_label,
                                 audit_value=value_label, audit_actor=actor_label)

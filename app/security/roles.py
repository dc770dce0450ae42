"""The standard roles every install starts with; administrators may add others."""
from __future__ import annotations

from app.security import service
from app.security.models import Role
from app.security.permissions import CATALOGUE

# (code, label, permissions)
STANDARD_ROLES = [
    ("admin", "Administrateur", sorted(CATALOGUE)),
    ("accueil", "Agent d'accueil", [
        "party.read", "party.write", "contact.create", "dossier.create", "document.generate",
    ]),
    ("back_office", "Agent de back-office", [
        "party.read", "party.write", "party.sensitive", "contact.create", "dossier.create", "dossier.process",
        "document.generate", "dunning.manage",
    ]),
    ("superviseur", "Superviseur", [
        "party.read", "party.export", "party.sensitive", "contact.create", "dossier.create", "dossier.process",
        "supervision", "dunning.manage",
    ]),
    ("concepteur", "Concepteur de processus", ["process.design", "admin.referentials"]),
    ("dpo", "Délégué à la protection des données", ["party.read", "party.sensitive", "party.privacy"]),
]


def ensure_standard_roles() -> list[Role]:
    """Create the standard roles, or reset their label and permissions to the standard ones."""
    return [
        service.ensure_role(code=code, label=label, permission_codes=permission_codes)
        for code, label, permission_codes in STANDARD_ROLES
    ]

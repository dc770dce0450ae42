"""The catalogue of permissions (functional scope). Roles hold codes from this list only."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

CATALOGUE: dict[str, object] = {
    "party.read": _l("Consulter les interlocuteurs et leurs contrats"),
    "party.write": _l("Créer et modifier les interlocuteurs"),
    "party.export": _l("Exporter des listes d'interlocuteurs et de contrats (CSV)"),
    "party.sensitive": _l("Voir les données sensibles (coordonnées bancaires, date de naissance, fragilité)"),
    "party.privacy": _l("Traiter les demandes sur les données personnelles (RGPD : accès, effacement)"),
    "contact.create": _l("Tracer les contacts"),
    "dossier.create": _l("Ouvrir des dossiers"),
    "dossier.process": _l("Traiter les étapes des dossiers"),
    "document.generate": _l("Générer des courriers et des mails"),
    "process.design": _l("Concevoir et déployer les processus"),
    "supervision": _l("Superviser les files de travail"),
    "dunning.manage": _l("Bloquer la relance d'un contrat, lancer une relance"),
    "admin.agents": _l("Administrer les agents, rôles et territoires"),
    "admin.referentials": _l("Administrer les référentiels"),
    "admin.api_tokens": _l("Administrer les jetons d'accès des systèmes (API)"),
}


def validate(codes: list[str] | set[str]) -> list[str]:
    """Return the codes sorted, or raise ValueError naming the first unknown one."""
    unknown = sorted(set(codes) - CATALOGUE.keys())
    if unknown:
        raise ValueError(f"permission inconnue : {unknown[0]}")
    return sorted(set(codes))

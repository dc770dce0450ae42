"""Demo data: real French territories, the standard roles and agents with different scopes."""
from __future__ import annotations

from sqlalchemy import select

from app.db import session
from app.security import service
from app.security.models import Agent, Territory

DEMO_PASSWORD = "guichet-demo-2026"

# (code, name, [(agency code, agency name, [(INSEE code, commune name)])])
TERRITORIES = [
    ("REG-84", "Auvergne-Rhône-Alpes", [
        ("AG-LYON", "Agence Lyon Métropole", [
            ("69123", "Lyon"), ("69266", "Villeurbanne"), ("69259", "Vénissieux"),
        ]),
        ("AG-LOIRE", "Agence Loire", [
            ("42218", "Saint-Étienne"), ("42207", "Saint-Chamond"), ("42095", "Firminy"),
        ]),
    ]),
    ("REG-93", "Provence-Alpes-Côte d'Azur", [
        ("AG-MARSEILLE", "Agence Marseille Provence", [
            ("13055", "Marseille"), ("13001", "Aix-en-Provence"), ("13005", "Aubagne"),
        ]),
        ("AG-NICE", "Agence Côte d'Azur", [
            ("06088", "Nice"), ("06004", "Antibes"), ("06029", "Cannes"),
        ]),
    ]),
]

ROLES = [
    ("admin", "Administrateur", [
        "party.read", "party.write", "contact.create", "dossier.create", "dossier.process",
        "document.generate", "process.design", "supervision", "admin.agents", "admin.referentials",
    ]),
    ("accueil", "Agent d'accueil", [
        "party.read", "party.write", "contact.create", "dossier.create", "document.generate",
    ]),
    ("back_office", "Agent de back-office", [
        "party.read", "party.write", "contact.create", "dossier.create", "dossier.process", "document.generate",
    ]),
    ("superviseur", "Superviseur", [
        "party.read", "contact.create", "dossier.create", "dossier.process", "supervision",
    ]),
    ("concepteur", "Concepteur de processus", ["process.design", "admin.referentials"]),
]

# (login, full name, roles, territories, description)
AGENTS = [
    ("admin", "Administrateur Guichet", ["admin"], ["REG-84", "REG-93"], "administrateur, toutes régions"),
    ("accueil.lyon", "Camille Lefèvre", ["accueil"], ["AG-LYON"], "accueil, agence Lyon Métropole"),
    ("backoffice.ara", "Karim Benali", ["back_office"], ["REG-84"], "back-office, région Auvergne-Rhône-Alpes"),
    ("superviseur.ara", "Sophie Martin-Duval", ["superviseur"], ["REG-84"], "superviseur, Auvergne-Rhône-Alpes"),
    ("concepteur", "Émile Rousseau", ["concepteur"], [], "concepteur de processus (sans territoire)"),
]


def has_agents() -> bool:
    return session.execute(select(Agent.id).limit(1)).first() is not None


def _territory(code: str) -> Territory | None:
    return session.execute(select(Territory).where(Territory.code == code)).scalar_one_or_none()


def seed_demo() -> dict[str, int]:
    """Create what is missing of the demo set; existing rows are left as they are."""
    counts = {"territories": 0, "roles": 0, "agents": 0}
    for region_code, region_name, agencies in TERRITORIES:
        region = _territory(region_code)
        if region is None:
            region = service.create_territory(code=region_code, name=region_name, kind="region")
            counts["territories"] += 1
        for agency_code, agency_name, communes in agencies:
            agency = _territory(agency_code)
            if agency is None:
                agency = service.create_territory(code=agency_code, name=agency_name, kind="agency", parent=region)
                counts["territories"] += 1
            for insee, name in communes:
                if _territory(insee) is None:
                    service.create_territory(code=insee, name=name, kind="commune", parent=agency, insee_code=insee)
                    counts["territories"] += 1
    for code, label, permission_codes in ROLES:
        service.ensure_role(code=code, label=label, permission_codes=permission_codes)
        counts["roles"] += 1
    for login, full_name, roles, territories, _description in AGENTS:
        if service.get_agent_by_login(login=login) is None:
            service.create_agent(login=login, full_name=full_name, password=DEMO_PASSWORD,
                                 role_codes=roles, territory_codes=territories)
            counts["agents"] += 1
    return counts


def describe_agents() -> list[tuple[str, str]]:
    return [(login, description) for login, _n, _r, _t, description in AGENTS]

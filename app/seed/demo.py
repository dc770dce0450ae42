"""Demo data: real French territories, the standard roles and agents with different scopes."""
from __future__ import annotations

from sqlalchemy import select

from app.db import session
from app.security import service
from app.security.models import Agent
from app.security.roles import ensure_standard_roles
from app.seed.referentials import seed_referentials

DEMO_PASSWORD = "guichet-demo-2026"  # noqa: S105 (demo accounts only; printed by `flask seed`)

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

# (login, full name, roles, territories, description)
AGENTS = [
    ("admin", "Administrateur Guichet", ["admin"], ["REG-84", "REG-93"], "administrateur, toutes régions"),
    ("accueil.lyon", "Camille Lefèvre", ["accueil"], ["AG-LYON"], "accueil, agence Lyon Métropole"),
    ("backoffice.ara", "Karim Benali", ["back_office"], ["REG-84"], "back-office, région Auvergne-Rhône-Alpes"),
    ("superviseur.ara", "Sophie Martin-Duval", ["superviseur"], ["REG-84"], "superviseur, Auvergne-Rhône-Alpes"),
    ("concepteur", "Émile Rousseau", ["concepteur"], [], "concepteur de processus (sans territoire)"),
    ("dpo", "Inès Moreau", ["dpo"], ["REG-84", "REG-93"], "déléguée à la protection des données, toutes régions"),
]


def has_agents() -> bool:
    return session.execute(select(Agent.id).limit(1)).first() is not None


def seed_demo() -> dict[str, int]:
    """Create what is missing of the demo set; existing rows are left as they are."""
    counts = {"territories": 0, "roles": 0, "agents": 0}
    for region_code, region_name, agencies in TERRITORIES:
        region = service.get_territory_by_code(code=region_code)
        if region is None:
            region = service.create_territory(code=region_code, name=region_name, kind="region")
            counts["territories"] += 1
        for agency_code, agency_name, communes in agencies:
            agency = service.get_territory_by_code(code=agency_code)
            if agency is None:
                agency = service.create_territory(code=agency_code, name=agency_name, kind="agency", parent=region)
                counts["territories"] += 1
            for insee, name in communes:
                if service.get_territory_by_code(code=insee) is None:
                    service.create_territory(code=insee, name=name, kind="commune", parent=agency, insee_code=insee)
                    counts["territories"] += 1
    counts["roles"] = len(ensure_standard_roles())
    counts.update(seed_referentials())
    for login, full_name, roles, territories, _description in AGENTS:
        if service.get_agent_by_login(login=login) is None:
            service.create_agent(login=login, full_name=full_name, password=DEMO_PASSWORD,
                                 role_codes=roles, territory_codes=territories)
            counts["agents"] += 1
    return counts


def describe_agents() -> list[tuple[str, str]]:
    return [(login, description) for login, _n, _r, _t, description in AGENTS]


def existing_demo_agents() -> list[tuple[str, str]]:
    """The demo accounts present in the database, with what each may do."""
    logins = set(session.execute(select(Agent.login).where(Agent.login.in_([a[0] for a in AGENTS]))).scalars())
    return [(login, description) for login, description in describe_agents() if login in logins]

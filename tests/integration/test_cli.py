"""Command line: the first administrator of a production install, the demo seed."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.db import session
from app.security import passwords
from app.security.models import Agent
from app.seed import demo
from tests.factories import TerritoryFactory, role_with


def test_agent_create_reads_the_password_from_stdin(app):
    role_with("admin")
    TerritoryFactory(code="REG-X")
    result = app.test_cli_runner().invoke(
        args=["agent", "create", "--login", "Chef", "--roles", "admin", "--territories", "REG-X",
              "--full-name", "Chef de service"],
        input="un-secret-tres-long\n",
    )
    assert result.exit_code == 0, result.output
    assert "« chef » créé" in result.output
    agent = session.execute(select(Agent).where(Agent.login == "chef")).scalar_one()
    assert passwords.verify_password(agent.password_hash, "un-secret-tres-long")
    assert [r.code for r in agent.roles] == ["admin"] and [t.code for t in agent.territories] == ["REG-X"]
    entry = session.execute(
        select(AuditEntry).where(AuditEntry.object_type == "agent", AuditEntry.object_id == str(agent.id))
    ).scalar_one()
    assert entry.action == "create" and entry.actor_label.startswith("cli:")


def test_agent_create_refuses_unknown_role_and_writes_nothing(app):
    result = app.test_cli_runner().invoke(
        args=["agent", "create", "--login", "someone", "--roles", "no-such-role"], input="un-secret-tres-long\n"
    )
    assert result.exit_code != 0
    assert "Rôle inconnu : no-such-role" in result.output
    assert session.execute(select(Agent).where(Agent.login == "someone")).first() is None


def test_agent_create_refuses_a_weak_password(app):
    result = app.test_cli_runner().invoke(args=["agent", "create", "--login", "someone"], input="court\n")
    assert result.exit_code != 0 and "au moins 12 caractères" in result.output


def test_seed_creates_the_demo_scopes_once(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    for login, _description in demo.describe_agents():
        assert login in result.output
    assert demo.DEMO_PASSWORD in result.output
    front_desk = session.execute(select(Agent).where(Agent.login == "accueil.lyon")).scalar_one()
    assert [t.code for t in front_desk.territories] == ["AG-LYON"]
    assert not front_desk.can("admin.agents") and front_desk.can("contact.create")
    assert session.execute(select(Agent).where(Agent.login == "admin")).scalar_one().can("admin.agents")

    from app.contacts.models import ContactType
    from app.dossiers.models import DossierType

    assert session.execute(select(ContactType).where(ContactType.code == "RENSEIGNEMENT")).scalar_one()
    again = runner.invoke(args=["seed", "--if-empty"])
    assert again.exit_code == 0 and "inchangées" in again.output and "Référentiels" not in again.output

    # A demo base from before contacts existed: --if-empty adds the demo referentials only.
    from app.dunning.models import DunningProcedure

    for model in (DunningProcedure, ContactType, DossierType):
        for row in session.execute(select(model)).scalars():
            session.delete(row)
    session.commit()
    upgraded = runner.invoke(args=["seed", "--if-empty"])
    assert upgraded.exit_code == 0 and "Référentiels de démonstration ajoutés : 8 types de contact" in upgraded.output
    assert session.execute(select(DossierType).where(DossierType.code == "RELANCE_IMPAYE")).scalar_one()


def test_production_bootstrap_roles_territories_then_first_administrator(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["role", "init"])
    assert result.exit_code == 0 and "admin.agents" in result.output
    assert runner.invoke(args=["territory", "add", "--code", "REG-11", "--name", "Île-de-France",
                               "--kind", "region"]).exit_code == 0
    result = runner.invoke(args=["territory", "add", "--code", "75056", "--name", "Paris", "--kind", "commune",
                                 "--parent", "REG-11"])
    assert result.exit_code == 0, result.output
    assert "/REG-11/75056/" in result.output
    bad_parent = runner.invoke(args=["territory", "add", "--code", "AG-X", "--name", "X", "--kind", "agency",
                                     "--parent", "NOPE"])
    assert bad_parent.exit_code != 0 and "parent inconnu" in bad_parent.output
    bad_insee = runner.invoke(args=["territory", "add", "--code", "7505", "--name", "X", "--kind", "commune",
                                    "--parent", "REG-11"])
    assert bad_insee.exit_code != 0 and "INSEE invalide" in bad_insee.output
    result = runner.invoke(args=["agent", "create", "--login", "root.admin", "--roles", "admin",
                                 "--territories", "REG-11"], input="a-long-production-secret\n")
    assert result.exit_code == 0, result.output
    assert session.execute(select(Agent).where(Agent.login == "root.admin")).scalar_one().can("admin.agents")
    listing = runner.invoke(args=["territory", "list"]).output
    assert "REG-11" in listing and "  75056" in listing


def test_seed_is_refused_in_production(app, monkeypatch):
    monkeypatch.setitem(app.config, "GUICHET_ENV", "production")
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code != 0 and "refusé en production" in result.output
    assert session.execute(select(Agent).where(Agent.login == "admin")).first() is None


def test_production_refuses_to_start_without_a_shared_rate_limit_store(monkeypatch):
    import pytest

    from app import config

    monkeypatch.setenv("GUICHET_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(RuntimeError, match="RATELIMIT_STORAGE_URI"):
        config.from_env()
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/1")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        config.from_env()


@pytest.mark.parametrize("value", ["6h30", "25:00", "06:60", "06:5", "06"])
def test_a_malformed_dunning_time_is_refused_at_start_with_its_name(monkeypatch, value):
    from app import config

    monkeypatch.setenv("DUNNING_AT", value)
    with pytest.raises(RuntimeError, match="DUNNING_AT must be a time of day as HH:MM"):
        config.from_env()
    monkeypatch.setenv("DUNNING_AT", "7:05")
    assert config.from_env()["DUNNING_AT"] == "07:05"

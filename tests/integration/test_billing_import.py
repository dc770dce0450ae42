"""Import of the billing system's CSV exports: idempotent, all or nothing, clear errors."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.contracts.models import (
    Contract,
    ContractParty,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import money_avg, session
from app.integration.billing_import import import_directory
from app.parties.models import Party, PartyEmail, PartyPhone
from tests.factories import TerritoryFactory

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "billing"
TABLES = [Party, PartyPhone, PartyEmail, ServicePoint, Meter, MeterInstallation, MeterReading, Contract,
          ContractParty, Invoice, Payment]


@pytest.fixture
def communes():
    """The communes of the example files, in two agencies."""
    region = TerritoryFactory(kind="region", code="R")
    lyon_agency = TerritoryFactory(parent=region, code="AG-L")
    nice_agency = TerritoryFactory(parent=region, code="AG-N")
    lyon = TerritoryFactory(parent=lyon_agency, kind="commune", code="69123", insee_code="69123", name="Lyon")
    nice = TerritoryFactory(parent=nice_agency, kind="commune", code="06088", insee_code="06088", name="Nice")
    return {"lyon": lyon, "nice": nice, "lyon_agency": lyon_agency, "nice_agency": nice_agency}


@pytest.fixture
def export_dir(tmp_path):
    target = tmp_path / "export"
    shutil.copytree(EXAMPLE, target)
    return target


def _counts() -> dict[str, int]:
    return {m.__tablename__: session.execute(select(func.count()).select_from(m)).scalar_one() for m in TABLES}


def _edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_import_creates_everything_with_typed_values(communes, export_dir):
    report = import_directory(export_dir)
    assert report.ok, report.problems
    assert _counts() == {"party": 4, "party_phone": 5, "party_email": 2, "service_point": 3, "meter": 4,
                         "meter_installation": 4, "meter_reading": 5,
                         "contract": 3, "contract_party": 5, "invoice": 4, "payment": 3}
    helene = session.execute(select(Party).where(Party.external_ref == "BP-1001")).scalar_one()
    assert helene.first_name == "Hélène" and helene.territory_id == communes["lyon"].id
    assert [p.number for p in helene.phones] == ["+33612345678", "+33478123456"]
    assert helene.status == "customer"
    assert session.execute(select(Party.status).where(Party.external_ref == "BP-1003")).scalar_one() \
        == "former_customer"
    invoice = session.execute(select(Invoice).where(Invoice.number == "F2024-000101")).scalar_one()
    assert invoice.amount == Decimal("84.60") and isinstance(invoice.amount, Decimal)
    assert invoice.balance == Decimal("0.00")
    current = session.execute(
        select(Meter.serial).join(MeterInstallation).where(MeterInstallation.removed_on.is_(None),
                                                           MeterInstallation.service_point.has(external_ref="SP-2001"))
    ).scalar_one()
    assert current == "LKY-009876"
    entry = session.execute(select(AuditEntry).where(AuditEntry.action == "import")).scalar_one()
    assert entry.changes["counts"]["party"]["created"] == 4


def _snapshot() -> dict:
    """Every row of every imported table, to prove a second run rewrites nothing."""
    return {m.__tablename__: sorted(map(tuple, session.execute(select(m.__table__)).all())) for m in TABLES}


def test_second_run_changes_nothing(communes, export_dir):
    assert import_directory(export_dir).ok
    before = _snapshot()
    report = import_directory(export_dir)
    assert report.ok
    assert all(c["created"] == 0 and c["updated"] == 0 for c in report.counts.values()), report.counts
    assert report.counts["meter_installation"]["unchanged"] == 4
    assert _snapshot() == before  # same rows, same ids, same versions


def test_a_changed_value_is_updated_and_audited(communes, export_dir):
    assert import_directory(export_dir).ok
    version = session.execute(select(Party.version).where(Party.external_ref == "BP-1001")).scalar_one()
    _edit(export_dir / "parties.csv", 2, "12 rue Victor-Hugo", "14 rue Victor-Hugo")
    _edit(export_dir / "invoices.csv", 4, "128.90;0;open", "128.90;128.90;paid")
    report = import_directory(export_dir)
    assert report.ok
    assert report.counts["party"]["updated"] == 1 and report.counts["invoice"]["updated"] == 1
    helene = session.execute(select(Party).where(Party.external_ref == "BP-1001")).scalar_one()
    assert helene.street == "14 rue Victor-Hugo"
    assert helene.version == version + 1  # an edit made on the old version will be refused
    changes = session.execute(
        select(AuditEntry.changes).where(AuditEntry.object_type == "party", AuditEntry.object_id == str(helene.id),
                                         AuditEntry.action == "update").order_by(AuditEntry.id)
    ).scalars().all()
    assert changes == [{"status": ["prospect", "customer"]},  # derived at the first import
                       {"street": ["12 rue Victor-Hugo", "14 rue Victor-Hugo"]}]


def test_terminating_the_last_contract_makes_a_former_customer(communes, export_dir):
    assert import_directory(export_dir).ok
    _edit(export_dir / "contracts.csv", 3, "active;2010-05-01;;", "terminated;2010-05-01;2024-08-31;")
    assert import_directory(export_dir).ok
    assert session.execute(select(Party.status).where(Party.external_ref == "BP-1002")).scalar_one() \
        == "former_customer"


@pytest.mark.parametrize("filename,line,old,new,message", [
    ("invoices.csv", 3, "2024-07-02", "2024-13-02", "invoices.csv, ligne 3 : issued_on : date invalide « 2024-13-02 »"),
    ("invoices.csv", 2, "CT-3001", "CT-9999", "invoices.csv, ligne 2 : contrat inconnu : CT-9999"),
    ("payments.csv", 3, "40.00", "-40.00", "payments.csv, ligne 3 : amount : montant négatif « -40.00 »"),
    ("contracts.csv", 2, "active", "running", "contracts.csv, ligne 2 : status : « running » n'est pas une valeur"),
    ("service_points.csv", 4, "06088", "75056", "service_points.csv, ligne 4 : commune 75056 hors des territoires"),
    ("parties.csv", 3, "+33698765432", "+33 1", "parties.csv, ligne 3 : phones : numéro de téléphone"),
    ("service_points.csv", 2, "09876543210123", "0987654321", "service_points.csv, ligne 2 : PDL invalide"),
])
def test_a_bad_line_is_reported_with_its_file_and_line_and_nothing_is_written(
        communes, export_dir, filename, line, old, new, message):
    _edit(export_dir / filename, line, old, new)
    report = import_directory(export_dir)
    assert not report.ok
    assert any(str(p).startswith(message) for p in report.problems), [str(p) for p in report.problems]
    session.rollback()
    assert set(_counts().values()) == {0}


def test_a_missing_column_is_reported(communes, export_dir):
    path = export_dir / "invoices.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(";due_on", "", 1), encoding="utf-8")
    report = import_directory(export_dir)
    assert [str(p) for p in report.problems] == ["invoices.csv, ligne 1 : colonne manquante : due_on"]
    assert set(_counts().values()) == {0}


def test_a_bad_line_on_a_second_run_leaves_the_first_import_untouched(communes, export_dir):
    assert import_directory(export_dir).ok
    session.commit()
    before = _counts()
    _edit(export_dir / "parties.csv", 2, "Hélène", "Héloïse")
    _edit(export_dir / "payments.csv", 2, "84.60", "abc")
    report = import_directory(export_dir)
    assert [str(p) for p in report.problems] == ["payments.csv, ligne 2 : amount : montant invalide « abc »"]
    session.rollback()
    assert _counts() == before
    assert session.execute(select(Party.first_name).where(Party.external_ref == "BP-1001")).scalar_one() == "Hélène"


def test_duplicate_keys_in_one_file_are_refused(communes, export_dir):
    with (export_dir / "payments.csv").open("a", encoding="utf-8") as handle:
        handle.write("PM-5001;IN-4001;2024-05-16;1.00;carte\n")
    report = import_directory(export_dir)
    assert [str(p) for p in report.problems] == ["payments.csv, ligne 5 : doublon de la ligne 2"]


def test_the_command_prints_a_summary_and_fails_on_errors(app, communes, export_dir):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import", str(export_dir)])
    assert result.exit_code == 0, result.output
    assert "party" in result.output and "créés" in result.output
    _edit(export_dir / "invoices.csv", 5, "212.00;212.00", "212.00;300.00")
    result = runner.invoke(args=["import", str(export_dir)])
    assert result.exit_code == 1
    assert "invoices.csv, ligne 5 : montant payé supérieur au montant de la facture" in result.output
    assert "Import annulé : 1 problème(s), rien n'a été écrit." in result.output


def test_a_changed_phone_is_an_audited_change_of_its_party(communes, export_dir):
    assert import_directory(export_dir).ok
    party = session.execute(select(Party).where(Party.external_ref == "BP-1002")).scalar_one()
    version = party.version
    _edit(export_dir / "parties.csv", 3, "+33698765432", "06 98 76 54 00")
    report = import_directory(export_dir)
    assert report.ok and report.counts["party"]["updated"] == 1 and report.counts["party"]["unchanged"] == 3
    session.expire_all()
    party = session.get(Party, party.id)
    assert [p.number for p in party.phones] == ["+33698765400"] and party.version == version + 1
    last = session.execute(select(AuditEntry.changes).where(AuditEntry.object_id == str(party.id))
                           .order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
    assert last == {"phones": [["+33698765432"], ["+33698765400"]]}


def test_a_corrected_installation_date_replaces_the_line(communes, export_dir):
    assert import_directory(export_dir).ok
    _edit(export_dir / "meters.csv", 5, "2019-09-02", "2019-09-03")
    report = import_directory(export_dir)
    assert report.ok, report.problems
    dates = session.execute(select(MeterInstallation.installed_on).join(Meter, Meter.id == MeterInstallation.meter_id)
                            .where(Meter.serial == "GAZ-77001")).scalars().all()
    assert [d.isoformat() for d in dates] == ["2019-09-03"]


def test_two_meters_installed_at_once_on_one_service_point_are_refused(communes, export_dir):
    with (export_dir / "meters.csv").open("a", encoding="utf-8") as handle:
        handle.write("GAZ-99999;gas;SP-2003;2024-01-01;\n")
    report = import_directory(export_dir)
    assert [str(p) for p in report.problems] == [
        "meters.csv, ligne 0 : point de desserte SP-2003 : deux compteurs posés en même temps "
        "(périodes de pose qui se chevauchent)"]
    assert set(_counts().values()) == {0}


def test_a_meter_with_two_kinds_is_refused(communes, export_dir):
    with (export_dir / "meters.csv").open("a", encoding="utf-8") as handle:
        handle.write("GAZ-77001;water;SP-2002;2010-01-01;2012-01-01\n")
    report = import_directory(export_dir)
    assert any("compteur GAZ-77001 : type « water » différent de la ligne 5" in str(p) for p in report.problems)


@pytest.mark.parametrize("filename,line,old,new,message", [
    ("parties.csv", 3, "CL0001002", "CL0001001", "parties.csv, ligne 3 : customer_number « CL0001001 » déjà utilisé "
                                                 "à la ligne 2"),
    ("invoices.csv", 3, "F2024-000102", "F2024-000101", "invoices.csv, ligne 3 : number « F2024-000101 » déjà"),
])
def test_a_number_used_twice_is_refused_before_writing(communes, export_dir, filename, line, old, new, message):
    _edit(export_dir / filename, line, old, new)
    report = import_directory(export_dir)
    assert any(str(p).startswith(message) for p in report.problems), [str(p) for p in report.problems]
    assert set(_counts().values()) == {0}


def test_a_number_held_by_another_object_is_refused(communes, export_dir):
    session.add(Party(number="CL0001001", last_name="Prospect créé dans Guichet"))
    session.commit()
    report = import_directory(export_dir)
    assert [str(p) for p in report.problems] == [
        "parties.csv, ligne 2 : customer_number « CL0001001 » déjà attribué à un objet créé dans Guichet"]


def test_money_stays_exact_in_sql_arithmetic(communes, export_dir):
    assert import_directory(export_dir).ok
    amount = session.execute(select(Invoice.amount * 2).where(Invoice.number == "F2024-000101")).scalar_one()
    assert amount == Decimal("169.20")
    total = session.execute(select(func.sum(Invoice.amount))).scalar_one()
    assert total == Decimal("516.85")
    balance = session.execute(select(func.sum(Invoice.amount - Invoice.amount_paid))).scalar_one()
    assert balance == Decimal("180.25")
    assert session.execute(select(Invoice.amount / 3).where(Invoice.number == "F2024-000102")).scalar_one() \
        == Decimal("30.45")
    assert session.execute(select(money_avg(Invoice.amount))).scalar_one() == Decimal("129.21")
    over_100 = session.execute(select(Invoice.number).where(Invoice.amount > Decimal("100"))
                               .order_by(Invoice.number)).scalars().all()
    assert over_100 == ["F2024-000221", "F2024-000331"]


def test_an_anonymised_party_keeps_its_erased_identity(communes, export_dir):
    """The billing system keeps its accounts for its own legal period: its next export must not
    write back the name, address and phones that the data-protection job erased."""
    from app import clock

    assert import_directory(export_dir).ok
    helene = session.execute(select(Party).where(Party.external_ref == "BP-1001")).scalar_one()
    helene.first_name, helene.last_name, helene.street, helene.anonymised_at = None, "Anonymisé", None, clock.now()
    helene.phones, helene.emails = [], []
    session.commit()
    report = import_directory(export_dir)
    assert report.ok, report.problems
    session.expire_all()
    helene = session.execute(select(Party).where(Party.external_ref == "BP-1001")).scalar_one()
    assert (helene.first_name, helene.last_name, helene.street) == (None, "Anonymisé", None)
    assert helene.phones == [] and helene.emails == []
    assert report.counts["party"]["updated"] == 0
    dupont = session.execute(select(Party).where(Party.external_ref == "BP-1002")).scalar_one()
    assert dupont.last_name == "Dupont-Moreau"  # the others are imported as ever

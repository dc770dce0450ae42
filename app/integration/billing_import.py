"""Import of the billing system's CSV exports (see docs/import-format.md).

The run is all or nothing: every file is read and checked first (types, allowed values,
references between files and to what the database already holds); if any line is wrong, the
report lists every problem with its file and line, and nothing is written. Otherwise every
row is upserted by its external reference in one transaction, so a second run of the same
files changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from sqlalchemy import Table, and_, any_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.sql import bindparam

from app.audit import service as audit
from app.contracts.models import (
    Contract,
    ContractParty,
    ContractStatus,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import session
from app.integration.billing_files import (
    OWN_KEY,
    REFERENCES,
    SPEC_BY_KIND,
    SPECS,
    ImportReport,
    Parsed,
    Problem,
    read_file,
)
from app.parties.models import Party, PartyEmail, PartyPhone, PartyStatus
from app.search import index as search_index
from app.security.models import Territory

CHUNK = 5000  # keys per IN (...) query or executemany batch


def _chunked(values: list):
    """Successive slices of at most CHUNK values."""
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _among(column, values: list):
    """column IN values. On PostgreSQL as = ANY(array): one parameter instead of thousands,
    which psycopg and SQLAlchemy would otherwise render and parse at every query."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _existing(column, values: Iterable[str]) -> set[str]:
    values = list(set(values))
    found: set[str] = set()
    for chunk in _chunked(values):
        found.update(session.execute(select(column).where(_among(column, chunk))).scalars())
    return found


def _check_references(parsed: Parsed, report: ImportReport, known_among=None, unknown_suffix: str = "") -> None:
    """Every reference names a row of the batch or of the database; known_among(target_kind,
    column, keys) may narrow "of the database" (the API: within the token's territories)."""
    for (kind, column), (target_kind, target_column) in REFERENCES.items():
        rows = parsed.rows.get(kind, [])
        if not rows:
            continue
        if target_kind in report.unreadable:
            continue
        in_batch = {values[OWN_KEY[target_kind]] for _line, values in parsed.rows.get(target_kind, [])}
        in_batch |= report.refused_keys.get(target_kind, set())  # already reported
        wanted = {values[column] for _line, values in rows} - in_batch
        known = in_batch | (known_among(target_kind, target_column, wanted) if known_among
                            else _existing(target_column, wanted))
        spec = SPEC_BY_KIND[kind]
        for line, values in rows:
            if values[column] not in known:
                label = {"service_point": "point de desserte inconnu", "meter": "compteur inconnu",
                         "contract": "contrat inconnu", "party": "interlocuteur inconnu",
                         "invoice": "facture inconnue"}[target_kind]
                report.problems.append(Problem(spec.filename, line, f"{label}{unknown_suffix} : {values[column]}",
                                               field=column))
                report.count(kind, "rejected")


# Columns other than the key that must be unique: csv column → column of the table.
UNIQUE_NUMBERS = {
    "party": ("customer_number", Party.__table__.c.number),
    "service_point": ("national_id", ServicePoint.__table__.c.national_id),
    "contract": ("number", Contract.__table__.c.number),
    "invoice": ("number", Invoice.__table__.c.number),
}


def _check_meter_kinds(parsed: Parsed, report: ImportReport) -> None:
    """All the lines of one meter give it the same kind."""
    kinds: dict[str, tuple[str, int]] = {}
    for line, values in parsed.rows.get("meter", []):
        kind, first = kinds.setdefault(values["serial"], (values["kind"], line))
        if kind != values["kind"]:
            report.problems.append(Problem("meters.csv", line, f"compteur {values['serial']} : type « "
                                           f"{values['kind']} » différent de la ligne {first} (« {kind} »)",
                                           field="kind"))


def _check_unique_numbers(parsed: Parsed, report: ImportReport, reveal_owners: bool = True) -> None:
    """A number used twice in a file, or already held by another object, is refused here
    rather than by the database in the middle of the writes. Without reveal_owners (the API,
    whose token may not see that object), the message does not name the holder."""
    for kind, (column, db_column) in UNIQUE_NUMBERS.items():
        rows = [(line, v) for line, v in parsed.rows.get(kind, []) if v[column]]
        if not rows:
            continue
        filename = SPEC_BY_KIND[kind].filename
        first_line: dict[str, int] = {}
        for line, values in rows:
            if values[column] in first_line:
                report.problems.append(Problem(filename, line, f"{column} « {values[column]} » déjà utilisé "
                                               f"à la ligne {first_line[values[column]]}", field=column))
            first_line.setdefault(values[column], line)
        owners: dict[str, str] = {}
        numbers = list(first_line)
        table = db_column.table
        for chunk in _chunked(numbers):
            stmt = select(db_column, table.c.external_ref).where(_among(db_column, chunk))
            owners.update(session.execute(stmt).all())
        for line, values in rows:
            if values[column] in owners and owners[values[column]] != values["external_ref"]:
                owner = (owners[values[column]] or "un objet créé dans Guichet") if reveal_owners else "un autre objet"
                report.problems.append(Problem(filename, line, f"{column} « {values[column]} » déjà attribué "
                                               f"à {owner}", field=column))


def _check_communes(parsed: Parsed, report: ImportReport, communes: dict[str, int]) -> None:
    for line, values in parsed.rows.get("service_point", []):
        if values["insee_code"] not in communes:
            report.problems.append(Problem(
                "service_points.csv", line,
                f"commune {values['insee_code']} hors des territoires de la régie (aucun territoire ne la couvre)",
                field="insee_code"))
            report.count("service_point", "rejected")


def _ids(column_key, column_id, keys: Iterable) -> dict:
    keys = list(set(keys))
    result = {}
    for chunk in _chunked(keys):
        result.update(session.execute(select(column_key, column_id).where(_among(column_key, chunk))).all())
    return result


def _anonymised(refs: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunked(list(set(refs))):
        found.update(session.execute(select(Party.external_ref).where(
            _among(Party.external_ref, chunk), Party.anonymised_at.is_not(None))).scalars())
    return found


def _upsert(table: Table, key: str, rows: list[dict], kind: str, report: ImportReport, progress,
            audited: bool = False) -> dict:
    """Insert new rows, update changed ones (by key); return key → id for all of them.

    With audited, each update also writes an audit entry with the changed values.
    """
    columns = [c for c in rows[0] if c != key] if rows else []
    existing: dict = {}
    keys = [r[key] for r in rows]
    for chunk in _chunked(keys):
        stmt = select(table.c.id, table.c[key], *[table.c[c] for c in columns]).where(_among(table.c[key], chunk))
        for record in session.execute(stmt):
            existing[record[1]] = record
    inserts, updates, changes = [], [], []
    for row in rows:
        record = existing.get(row[key])
        if record is None:
            inserts.append(row)
            continue
        changed = {c: [record[i + 2], row[c]] for i, c in enumerate(columns) if record[i + 2] != row[c]}
        if changed:
            updates.append({**{f"v_{c}": row[c] for c in columns}, "b_id": record[0]})
            report.updated_ids.setdefault(kind, set()).add(record[0])
            changes.append((str(record[0]), {c: [audit.json_value(v) for v in pair] for c, pair in changed.items()}))
        else:
            report.count(kind, "unchanged")
    if audited:
        audit.record_changes(table.name, changes)
    for chunk in _chunked(inserts):
        session.execute(insert(table), chunk)
        progress(len(chunk))
    if updates:
        values = {c: bindparam(f"v_{c}") for c in columns}
        if "version" in table.c:  # optimistic locking: an edit based on the old row must fail
            values["version"] = table.c.version + 1
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(values)
        for chunk in _chunked(updates):
            session.connection().execute(stmt, chunk)
            progress(len(chunk))
    report.count(kind, "created", len(inserts))
    report.count(kind, "updated", len(updates))
    return _ids(table.c[key], table.c.id, keys)


def _write(parsed: Parsed, report: ImportReport, communes: dict[str, int], progress) -> set[int]:
    """Upsert everything in dependency order; returns the ids of the parties to re-derive."""
    rows = parsed.rows
    touched_parties: set[int] = set()

    party_rows = [
        {"external_ref": v["external_ref"], "number": v["customer_number"], "kind": v["kind"],
         "civility": v["civility"], "first_name": v["first_name"], "last_name": v["last_name"],
         "company_name": v["company_name"], "birth_date": v["birth_date"], "street": v["street"],
         "address_extra": v["address_extra"], "postal_code": v["postal_code"], "city": v["city"],
         "insee_code": v["insee_code"], "vulnerable": v["vulnerable"],
         "territory_id": communes.get(v["insee_code"])}
        for _l, v in rows.get("party", [])
    ]
    # An anonymised party (data protection) keeps its erased identity: the billing system, which
    # keeps its accounts for its own legal period, would otherwise write the name back.
    anonymised = _anonymised([r["external_ref"] for r in party_rows])
    if anonymised:
        party_rows = [r for r in party_rows if r["external_ref"] not in anonymised]
        report.count("party", "unchanged", len(anonymised))
    if party_rows:
        existed = set(_ids(Party.external_ref, Party.id, [r["external_ref"] for r in party_rows]).values())
        party_ids = _upsert(Party.__table__, "external_ref", party_rows, "party", report, progress, audited=True)
        _record_contact_changes(_replace_contact_points(
            [(n, v) for n, v in rows["party"] if v["external_ref"] not in anonymised], party_ids), existed, report)
        touched_parties.update(party_ids.values())

    sp_rows = [
        {"external_ref": v["external_ref"], "kind": v["kind"], "national_id": v["national_id"],
         "street": v["street"], "address_extra": v["address_extra"], "postal_code": v["postal_code"],
         "city": v["city"], "insee_code": v["insee_code"], "main_residence": v["main_residence"],
         "territory_id": communes[v["insee_code"]]}
        for _l, v in rows.get("service_point", [])
    ]
    if sp_rows:
        written = _upsert(ServicePoint.__table__, "external_ref", sp_rows, "service_point", report, progress)
        # Premises perhaps now in another commune: their parties may be seen from another territory.
        touched_parties.update(session.execute(
            select(ContractParty.party_id).join(Contract, Contract.id == ContractParty.contract_id)
            .where(_among(Contract.service_point_id, list(written.values())))).scalars())
    sp_ids = _ids(ServicePoint.external_ref, ServicePoint.id,
                  [v["service_point_ref"] for k in ("meter", "reading", "contract") for _l, v in rows.get(k, [])])

    meter_rows = rows.get("meter", [])
    if meter_rows:
        meters = {v["serial"]: v["kind"] for _l, v in meter_rows}  # one kind per serial: checked before
        meter_ids = _upsert(Meter.__table__, "serial", [{"serial": s, "kind": k} for s, k in meters.items()],
                            "meter", report, progress)
        _replace_installations(meter_rows, meter_ids, sp_ids, report, progress)
        for ref in _overlapping_installations(list({sp_ids[v["service_point_ref"]] for _l, v in meter_rows})):
            report.problems.append(Problem("meters.csv", 0, f"point de desserte {ref} : deux compteurs posés "
                                           "en même temps (périodes de pose qui se chevauchent)"))
    meter_ids = _ids(Meter.serial, Meter.id, [v["meter_serial"] for _l, v in rows.get("reading", [])])

    reading_rows = [
        {"external_ref": v["external_ref"], "meter_id": meter_ids[v["meter_serial"]],
         "service_point_id": sp_ids[v["service_point_ref"]], "read_on": v["read_on"],
         "index_value": v["index"], "kind": v["kind"]}
        for _l, v in rows.get("reading", [])
    ]
    if reading_rows:
        _upsert(MeterReading.__table__, "external_ref", reading_rows, "reading", report, progress)

    contract_rows = [
        {"external_ref": v["external_ref"], "number": v["number"], "service_point_id": sp_ids[v["service_point_ref"]],
         "status": v["status"], "start_date": v["start_date"], "end_date": v["end_date"], "offer": v["offer"]}
        for _l, v in rows.get("contract", [])
    ]
    if contract_rows:
        ids = _upsert(Contract.__table__, "external_ref", contract_rows, "contract", report, progress)
        touched_parties.update(session.execute(
            select(ContractParty.party_id).where(_among(ContractParty.contract_id, list(ids.values())))).scalars())

    if rows.get("contract_party"):
        touched_parties.update(_replace_contract_parties(rows["contract_party"], report, progress))

    contract_ids = _ids(Contract.external_ref, Contract.id, [v["contract_ref"] for _l, v in rows.get("invoice", [])])
    invoice_rows = [
        {"external_ref": v["external_ref"], "number": v["number"], "contract_id": contract_ids[v["contract_ref"]],
         "issued_on": v["issued_on"], "due_on": v["due_on"], "amount": v["amount"],
         "amount_paid": v["amount_paid"], "status": v["status"]}
        for _l, v in rows.get("invoice", [])
    ]
    if invoice_rows:
        _upsert(Invoice.__table__, "external_ref", invoice_rows, "invoice", report, progress)

    invoice_ids = _ids(Invoice.external_ref, Invoice.id, [v["invoice_ref"] for _l, v in rows.get("payment", [])])
    payment_rows = [
        {"external_ref": v["external_ref"], "invoice_id": invoice_ids[v["invoice_ref"]], "paid_on": v["paid_on"],
         "amount": v["amount"], "method": v["method"]}
        for _l, v in rows.get("payment", [])
    ]
    if payment_rows:
        _upsert(Payment.__table__, "external_ref", payment_rows, "payment", report, progress)
    # Names, addresses, and where each party is seen from (its contracts' premises) in the index.
    search_index.refresh(touched_parties)
    return touched_parties


def _replace_contact_points(party_rows: list[tuple[int, dict]], party_ids: dict) -> dict[int, dict]:
    """Phones and emails of the imported parties become exactly those of the file; returns
    party id → {"phones"/"emails": [before, after]} for the parties whose lists changed."""
    changes: dict[int, dict] = {}
    wanted_phones = {party_ids[v["external_ref"]]: v["phones"] for _l, v in party_rows}
    wanted_emails = {party_ids[v["external_ref"]]: v["emails"] for _l, v in party_rows}
    for table, column, wanted in ((PartyPhone.__table__, "number", wanted_phones),
                                  (PartyEmail.__table__, "address", wanted_emails)):
        ids = list(wanted)
        current: dict[int, list[str]] = {}
        for chunk in _chunked(ids):
            stmt = (select(table.c.party_id, table.c[column]).where(_among(table.c.party_id, chunk))
                    .order_by(table.c.party_id, table.c.position))
            for party_id, value in session.execute(stmt):
                current.setdefault(party_id, []).append(value)
        changed = [pid for pid, values in wanted.items() if current.get(pid, []) != values]
        field_name = "phones" if column == "number" else "emails"
        for pid in changed:
            changes.setdefault(pid, {})[field_name] = [current.get(pid, []), wanted[pid]]
        for chunk in _chunked(changed):
            session.execute(delete(table).where(_among(table.c.party_id, chunk)))
        new_rows = [{"party_id": pid, column: value, "position": i}
                    for pid in changed for i, value in enumerate(wanted[pid])]
        for chunk in _chunked(new_rows):
            session.execute(insert(table), chunk)
    return changes


def _record_contact_changes(changes: dict[int, dict], existed: set[int], report: ImportReport) -> None:
    """A changed phone or email is a change of its party: audited, and its version moves on."""
    changed = sorted(pid for pid in changes if pid in existed)
    if not changed:
        return
    table = Party.__table__
    for chunk in _chunked(changed):
        session.execute(update(table).where(_among(table.c.id, chunk))
                        .values(version=table.c.version + 1))
    audit.record_changes("party", [(str(pid), changes[pid]) for pid in changed])
    newly_updated = [pid for pid in changed if pid not in report.updated_ids.get("party", set())]
    report.count("party", "updated", len(newly_updated))
    report.count("party", "unchanged", -len(newly_updated))


def _replace_installations(meter_rows, meter_ids: dict, sp_ids: dict, report: ImportReport, progress) -> None:
    """The lines given for a meter become its whole installation history (a corrected date
    replaces the old line instead of adding a second installation)."""
    table = MeterInstallation.__table__
    wanted: dict[int, set[tuple]] = {}
    for _l, v in meter_rows:
        wanted.setdefault(meter_ids[v["serial"]], set()).add(
            (sp_ids[v["service_point_ref"]], v["installed_on"], v["removed_on"]))
    current: dict[int, dict[tuple, int]] = {}
    ids = list(wanted)
    for chunk in _chunked(ids):
        stmt = select(table.c.id, table.c.meter_id, table.c.service_point_id, table.c.installed_on,
                      table.c.removed_on).where(_among(table.c.meter_id, chunk))
        for row in session.execute(stmt):
            current.setdefault(row.meter_id, {})[(row.service_point_id, row.installed_on, row.removed_on)] = row.id
    stale, fresh = [], []
    for meter_id, lines in wanted.items():
        before = current.get(meter_id, {})
        stale += [row_id for line, row_id in before.items() if line not in lines]
        fresh += [{"meter_id": meter_id, "service_point_id": sp, "installed_on": on, "removed_on": off}
                  for sp, on, off in lines - before.keys()]
        report.count("meter_installation", "unchanged", len(lines & before.keys()))
    for chunk in _chunked(stale):
        session.execute(delete(table).where(_among(table.c.id, chunk)))
    for chunk in _chunked(fresh):
        session.execute(insert(table), chunk)
    report.count("meter_installation", "created", len(fresh))
    report.count("meter_installation", "updated", len(stale))
    progress(len(meter_rows))


def _overlapping_installations(service_point_ids: list[int]) -> list[str]:
    """Service points (external refs) that now have two meters installed at the same time."""
    first, second = MeterInstallation.__table__.alias("a"), MeterInstallation.__table__.alias("b")
    overlap = (
        select(ServicePoint.external_ref).distinct()
        .join(first, first.c.service_point_id == ServicePoint.id)
        .join(second, and_(second.c.service_point_id == first.c.service_point_id, second.c.id > first.c.id))
        .where(_among(ServicePoint.id, service_point_ids),
               first.c.installed_on < func.coalesce(second.c.removed_on, date.max),
               second.c.installed_on < func.coalesce(first.c.removed_on, date.max))
    )
    return sorted(session.execute(overlap).scalars())


def _replace_contract_parties(rows, report: ImportReport, progress) -> set[int]:
    """The roles listed for a contract become exactly its roles; returns the parties involved."""
    contract_ids = _ids(Contract.external_ref, Contract.id, [v["contract_ref"] for _l, v in rows])
    party_ids = _ids(Party.external_ref, Party.id, [v["party_ref"] for _l, v in rows])
    wanted: dict[int, set[tuple[int, str]]] = {}
    for _l, v in rows:
        wanted.setdefault(contract_ids[v["contract_ref"]], set()).add((party_ids[v["party_ref"]], v["role"]))
    table = ContractParty.__table__
    current: dict[int, set[tuple[int, str]]] = {}
    ids = list(wanted)
    for chunk in _chunked(ids):
        stmt = select(table.c.contract_id, table.c.party_id, table.c.role).where(
            _among(table.c.contract_id, chunk))
        for contract_id, party_id, role in session.execute(stmt):
            current.setdefault(contract_id, set()).add((party_id, role))
    involved: set[int] = set()
    added_rows, removed_rows = [], []
    for contract_id, links in wanted.items():
        before = current.get(contract_id, set())
        removed_rows += [{"c": contract_id, "p": p, "r": r} for p, r in before - links]
        added_rows += [{"contract_id": contract_id, "party_id": p, "role": r} for p, r in links - before]
        report.count("contract_party", "unchanged", len(links & before))
        involved.update(p for p, _r in before | links)
    if removed_rows:
        session.connection().execute(
            delete(table).where(and_(table.c.contract_id == bindparam("c"), table.c.party_id == bindparam("p"),
                                     table.c.role == bindparam("r"))), removed_rows)
    for chunk in _chunked(added_rows):
        session.execute(insert(table), chunk)
    report.count("contract_party", "created", len(added_rows))
    report.count("contract_party", "updated", len(removed_rows))
    progress(len(rows))
    return involved


def refresh_party_statuses(party_ids: Iterable[int]) -> int:
    """Customer with an active or pending contract, former customer with only terminated ones,
    prospect with none. Returns how many statuses changed."""
    ids = list(party_ids)
    changes = []
    for chunk in _chunked(ids):
        statuses = dict(session.execute(select(Party.id, Party.status).where(_among(Party.id, chunk))).all())
        contract_statuses: dict[int, set[str]] = {}
        stmt = (select(ContractParty.party_id, Contract.status)
                .join(Contract, Contract.id == ContractParty.contract_id)
                .where(_among(ContractParty.party_id, chunk)))
        for party_id, status in session.execute(stmt):
            contract_statuses.setdefault(party_id, set()).add(status)
        by_status: dict[str, list[int]] = {}
        for party_id, current in statuses.items():
            found = contract_statuses.get(party_id, set())
            if found & {ContractStatus.ACTIVE, ContractStatus.PENDING}:
                wanted = PartyStatus.CUSTOMER
            elif found:
                wanted = PartyStatus.FORMER_CUSTOMER
            else:
                wanted = PartyStatus.PROSPECT
            if wanted != current:
                by_status.setdefault(wanted, []).append(party_id)
                changes.append((str(party_id), {"status": [current, wanted]}))
        table = Party.__table__
        for wanted, party_ids_with_status in by_status.items():
            session.execute(update(table).where(_among(table.c.id, party_ids_with_status))
                            .values(status=wanted, version=table.c.version + 1))
    audit.record_changes("party", changes)
    return len(changes)


def import_directory(directory: Path, *, progress: Callable[[int], None] = lambda n: None) -> ImportReport:
    """Check then import the CSV files found in directory; writes nothing if any line is wrong."""
    directory = Path(directory)
    report = ImportReport()
    known = [spec.filename for spec in SPECS if (directory / spec.filename).exists()]
    if not known:
        report.problems.append(Problem(str(directory), 0, "aucun fichier d'export reconnu "
                                       f"(attendus : {', '.join(s.filename for s in SPECS)})"))
        return report
    parsed = Parsed({spec.kind: read_file(directory, spec, report, progress) for spec in SPECS})
    return import_parsed(parsed, report, audit_id=directory.name[:64], audit_data={"files": known},
                         progress=progress)


def communes_by_insee() -> dict[str, int]:
    """INSEE code → id of the commune territory carrying it."""
    return dict(session.execute(
        select(Territory.insee_code, Territory.id).where(Territory.insee_code.is_not(None))).all())


def import_parsed(parsed: Parsed, report: ImportReport, *, audit_id: str, audit_data: dict,
                  progress: Callable[[int], None] = lambda n: None, known_among=None, unknown_suffix: str = "",
                  reveal_owners: bool = True,
                  extra_check: Callable[[Parsed, ImportReport, dict[str, int]], None] | None = None) -> ImportReport:
    """Check then write rows already parsed (from files, or from the API's records): all or nothing.

    known_among, unknown_suffix and reveal_owners narrow the reference checks (see
    _check_references and _check_unique_numbers); extra_check adds the caller's own rules.
    """
    communes = communes_by_insee()
    _check_communes(parsed, report, communes)
    _check_references(parsed, report, known_among, unknown_suffix)
    _check_unique_numbers(parsed, report, reveal_owners)
    _check_meter_kinds(parsed, report)
    if extra_check is not None:
        extra_check(parsed, report, communes)
    if report.problems:
        return report
    # Some rules can only be checked on the result (overlapping meter installations), and the
    # database may still refuse a row: the writes happen in a savepoint dropped on any problem.
    savepoint = session.begin_nested()
    try:
        touched = _write(parsed, report, communes, progress)
    except (IntegrityError, DataError) as exc:
        report.problems.append(Problem("?", 0, f"la base a refusé une ligne : {str(exc.orig).splitlines()[0]}"))
    if report.problems:
        savepoint.rollback()
        return report
    refresh_party_statuses(touched)
    audit.record("import", object_type="billing_export", object_id=audit_id,
                 data={**audit_data, "counts": report.counts})
    savepoint.commit()
    _settle_dunning(parsed, audit_id)
    return report


def _settle_dunning(parsed: Parsed, audit_id: str) -> None:
    """Invoices or payments imported may clear what a relaunch dossier chases: it is told, and closes."""
    from app.dunning.service import settle_paid

    rows = parsed.rows
    contract_refs = {v["contract_ref"] for _l, v in rows.get("invoice", [])}
    invoice_refs = [v["invoice_ref"] for _l, v in rows.get("payment", [])]
    contract_ids = set(_ids(Contract.external_ref, Contract.id, contract_refs).values())
    for chunk in _chunked(invoice_refs):
        contract_ids.update(session.execute(select(Invoice.contract_id).where(
            _among(Invoice.external_ref, chunk))).scalars())
    if contract_ids:
        settle_paid(contract_ids, source=f"import:{audit_id}"[:100])

"""The billing system's CSV exports: their files, columns and rules, and how one file is read
and checked line by line (see docs/import-format.md)."""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.contracts.models import (
    Contract,
    ContractRole,
    ContractStatus,
    Invoice,
    InvoiceStatus,
    Meter,
    ReadingKind,
    ServicePoint,
    ServicePointKind,
)
from app.integration import fields as f
from app.parties.models import Party, PartyKind


class FieldError(ValueError):
    """A rule between the fields of one line broken, blamed on one of them."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FileSpec:
    kind: str
    filename: str
    columns: dict[str, Callable]
    key: tuple[str, ...]
    check: Callable[[dict], None] | None = None


def _check_party(row: dict) -> None:
    if row["kind"] == PartyKind.ORGANISATION and not row["company_name"]:
        raise FieldError("company_name", "raison sociale obligatoire pour une personne morale")
    if row["kind"] == PartyKind.PERSON and not row["last_name"]:
        raise FieldError("last_name", "nom obligatoire pour une personne physique")


def _check_service_point(row: dict) -> None:
    national_id = row["national_id"]
    if national_id and row["kind"] in (ServicePointKind.ELECTRICITY, ServicePointKind.GAS):
        if not (len(national_id) == 14 and national_id.isdigit()):
            label = "PDL" if row["kind"] == ServicePointKind.ELECTRICITY else "PCE"
            raise FieldError("national_id", f"{label} invalide « {national_id} » (14 chiffres attendus)")


def _check_meter(row: dict) -> None:
    if row["removed_on"] and row["removed_on"] < row["installed_on"]:
        raise FieldError("removed_on", "date de dépose antérieure à la date de pose")


def _check_contract(row: dict) -> None:
    if row["end_date"] and row["end_date"] < row["start_date"]:
        raise FieldError("end_date", "date de fin antérieure à la date de début")
    if row["status"] == ContractStatus.TERMINATED and not row["end_date"]:
        raise FieldError("end_date", "un contrat résilié doit avoir une date de fin")


def _check_invoice(row: dict) -> None:
    if row["due_on"] < row["issued_on"]:
        raise FieldError("due_on", "date d'exigibilité antérieure à la date d'émission")
    if row["amount_paid"] > row["amount"]:
        raise FieldError("amount_paid", "montant payé supérieur au montant de la facture")


SPECS = [
    FileSpec("party", "parties.csv", {
        "external_ref": f.text(40, required=True),
        "customer_number": f.text(20, required=True),
        "kind": f.choice(PartyKind.ALL, default=PartyKind.PERSON),
        "civility": f.text(10),
        "first_name": f.text(100),
        "last_name": f.text(100),
        "company_name": f.text(200),
        "birth_date": f.iso_date(required=False),
        "phones": f.phones,
        "emails": f.emails,
        "street": f.text(200),
        "address_extra": f.text(200),
        "postal_code": f.postal_code,
        "city": f.text(100),
        "insee_code": f.insee(),
        "vulnerable": f.boolean(default=False),
    }, ("external_ref",), _check_party),
    FileSpec("service_point", "service_points.csv", {
        "external_ref": f.text(40, required=True),
        "kind": f.choice(ServicePointKind.ALL),
        "national_id": f.text(30),
        "street": f.text(200),
        "address_extra": f.text(200),
        "postal_code": f.postal_code,
        "city": f.text(100),
        "insee_code": f.insee(required=True),
        "main_residence": f.boolean(default=True),
    }, ("external_ref",), _check_service_point),
    FileSpec("meter", "meters.csv", {
        "serial": f.text(40, required=True),
        "kind": f.choice(ServicePointKind.ALL),
        "service_point_ref": f.text(40, required=True),
        "installed_on": f.iso_date(),
        "removed_on": f.iso_date(required=False),
    }, ("serial", "installed_on"), _check_meter),
    FileSpec("reading", "readings.csv", {
        "external_ref": f.text(40, required=True),
        "meter_serial": f.text(40, required=True),
        "service_point_ref": f.text(40, required=True),
        "read_on": f.iso_date(),
        "index": f.integer(),
        "kind": f.choice(ReadingKind.ALL),
    }, ("external_ref",)),
    FileSpec("contract", "contracts.csv", {
        "external_ref": f.text(40, required=True),
        "number": f.text(30, required=True),
        "service_point_ref": f.text(40, required=True),
        "status": f.choice(ContractStatus.ALL),
        "start_date": f.iso_date(),
        "end_date": f.iso_date(required=False),
        "offer": f.text(100),
    }, ("external_ref",), _check_contract),
    FileSpec("contract_party", "contract_parties.csv", {
        "contract_ref": f.text(40, required=True),
        "party_ref": f.text(40, required=True),
        "role": f.choice(ContractRole.ALL),
    }, ("contract_ref", "party_ref", "role")),
    FileSpec("invoice", "invoices.csv", {
        "external_ref": f.text(40, required=True),
        "number": f.text(30, required=True),
        "contract_ref": f.text(40, required=True),
        "issued_on": f.iso_date(),
        "due_on": f.iso_date(),
        "amount": f.amount(),
        "amount_paid": f.amount(required=False),
        "status": f.choice(InvoiceStatus.ALL),
    }, ("external_ref",), _check_invoice),
    FileSpec("payment", "payments.csv", {
        "external_ref": f.text(40, required=True),
        "invoice_ref": f.text(40, required=True),
        "paid_on": f.iso_date(),
        "amount": f.amount(),
        "method": f.text(20),
    }, ("external_ref",)),
]
SPEC_BY_KIND = {spec.kind: spec for spec in SPECS}

# column of a file → (kind it refers to, column of the referred table holding the key)
REFERENCES = {
    ("meter", "service_point_ref"): ("service_point", ServicePoint.__table__.c.external_ref),
    ("reading", "meter_serial"): ("meter", Meter.__table__.c.serial),
    ("reading", "service_point_ref"): ("service_point", ServicePoint.__table__.c.external_ref),
    ("contract", "service_point_ref"): ("service_point", ServicePoint.__table__.c.external_ref),
    ("contract_party", "contract_ref"): ("contract", Contract.__table__.c.external_ref),
    ("contract_party", "party_ref"): ("party", Party.__table__.c.external_ref),
    ("invoice", "contract_ref"): ("contract", Contract.__table__.c.external_ref),
    ("payment", "invoice_ref"): ("invoice", Invoice.__table__.c.external_ref),
}
# the column of each kind's own rows that others refer to
OWN_KEY = {"service_point": "external_ref", "meter": "serial", "contract": "external_ref",
           "party": "external_ref", "invoice": "external_ref"}


@dataclass
class Problem:
    filename: str
    line: int
    message: str
    field: str | None = None  # the column at fault, when one is (the API answers per field)

    def __str__(self) -> str:
        return f"{self.filename}, ligne {self.line} : {self.message}"


@dataclass
class ImportReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Keys of refused lines, and kinds whose file could not be read at all: references to them
    # are not reported again as "unknown", which would bury the real error.
    refused_keys: dict[str, set[str]] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    updated_ids: dict[str, set[int]] = field(default_factory=dict)
    every_field: bool = False  # report every wrong field of a line, not only the first

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: str, what: str, n: int = 1) -> None:
        bucket = self.counts.setdefault(kind, {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0})
        bucket[what] += n


@dataclass
class Parsed:
    rows: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)


def read_file(directory: Path, spec: FileSpec, report: ImportReport, progress) -> list[tuple[int, dict]]:
    path = directory / spec.filename
    if not path.exists():
        return []
    rows: list[tuple[int, dict]] = []
    seen: dict[tuple, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        missing = [c for c in spec.columns if c not in (reader.fieldnames or [])]
        if missing:
            report.problems.append(Problem(spec.filename, 1, f"colonne manquante : {', '.join(missing)}"))
            report.unreadable.add(spec.kind)
            return []
        for raw in reader:
            line = reader.line_num
            progress(1)
            if None in raw or any(v is None for v in raw.values()):
                report.problems.append(Problem(spec.filename, line, "nombre de champs incorrect"))
                report.count(spec.kind, "rejected")
                continue
            values = parse_record(spec, raw, line, report)
            if values is None:
                continue
            key = tuple(values[k] for k in spec.key)
            if key in seen:
                report.problems.append(Problem(spec.filename, line, f"doublon de la ligne {seen[key]}"))
                report.count(spec.kind, "rejected")
                continue
            seen[key] = line
            rows.append((line, values))
    return rows


def parse_record(spec: FileSpec, raw: dict[str, str], line: int, report: ImportReport) -> dict | None:
    """One line (or one record of the API) of spec's kind, parsed and checked: its values, or None
    after adding every problem to the report. raw maps each column to its text ("" when empty)."""
    values, problems = {}, []
    for column, parse in spec.columns.items():
        try:
            values[column] = parse(raw.get(column, ""))
        except ValueError as exc:
            problems.append(Problem(spec.filename, line, f"{column} : {exc}", field=column))
    if not problems and spec.check:
        try:
            spec.check(values)
        except ValueError as exc:
            problems.append(Problem(spec.filename, line, str(exc), field=getattr(exc, "field", None)))
    if not problems:
        return values
    # The command line has always reported the first wrong field of a line; the API reports each.
    report.problems.extend(problems if report.every_field else problems[:1])
    report.count(spec.kind, "rejected")
    if spec.kind in OWN_KEY:
        report.refused_keys.setdefault(spec.kind, set()).add((raw.get(OWN_KEY[spec.kind]) or "").strip())
    return None




def count_lines(directory: Path) -> int:
    """Data lines in the files of the directory (for a progress bar)."""
    total = 0
    for spec in SPECS:
        path = directory / spec.filename
        if path.exists():
            with path.open(encoding="utf-8-sig") as handle:
                total += max(sum(1 for _ in handle) - 1, 0)
    return total

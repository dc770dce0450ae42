"""Master data pushed by the billing system one change at a time (POST /api/v1/masterdata).

The records are those of the billing import (docs/import-format.md), as JSON: one list per file,
named like the file without ``.csv`` (``parties``, ``service_points``, ``meters``, ``readings``,
``contracts``, ``contract_parties``, ``invoices``, ``payments``), each record an object with the
file's columns. They go through the import's own rules: the same parsers, the same checks
(references, unique numbers, communes), the same upsert by key, the same audit entry; all or
nothing. The API adds its token's territories: every record must lie within them, before the
write (what it updates) and after it (the commune it gives), and it may refer only to objects
within them; a record outside is refused like an unknown one.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import exists, select

from app.api.errors import ValidationError
from app.contracts.models import (
    Contract,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import session
from app.integration.billing_files import SPECS, ImportReport, Parsed, Problem, parse_record
from app.integration.billing_import import import_parsed
from app.parties.models import Party
from app.security.models import Territory
from app.security.scope import territory_ids_under

MAX_RECORDS = 1000  # per call: a day's delta goes through the file import
COLLECTIONS = {spec.filename.removesuffix(".csv"): spec for spec in SPECS}
COLLECTION_OF_FILE = {spec.filename: name for name, spec in COLLECTIONS.items()}
# kind → (model, key column) of the rows a record updates, for the scope of existing ones
OWN_ROWS = {
    "party": (Party, Party.external_ref),
    "service_point": (ServicePoint, ServicePoint.external_ref),
    "reading": (MeterReading, MeterReading.external_ref),
    "contract": (Contract, Contract.external_ref),
    "invoice": (Invoice, Invoice.external_ref),
    "payment": (Payment, Payment.external_ref),
}
REFERRED = {"service_point": ServicePoint, "meter": Meter, "contract": Contract, "party": Party, "invoice": Invoice}
OUT_OF_SCOPE = " ou hors du périmètre de ce jeton"


def _text(value) -> str | None:
    """A JSON value as the import's parsers read it (the text of a CSV cell), or None if unfit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    if isinstance(value, str):
        return value.replace("\r", " ").replace("\n", " ")
    if isinstance(value, list) and all(isinstance(v, str) and "|" not in v for v in value):
        return "|".join(value)  # phones, emails
    return None


def _parse(body: dict, report: ImportReport) -> Parsed:
    """The records of the request, parsed by the import's rules; problems go to the report with
    line = index + 1 (0 stands for no record in particular)."""
    fields: dict[str, str] = {}
    unknown = sorted(set(body) - set(COLLECTIONS))
    for name in unknown:
        fields[name[:100]] = _("Sorte d'enregistrement inconnue (permises : %(known)s).", known=", ".join(COLLECTIONS))
    lists = {name: body.get(name) for name in COLLECTIONS if body.get(name) is not None}
    for name, records in lists.items():
        if not isinstance(records, list):
            fields[name] = _("Une liste d'enregistrements est attendue.")
    if not fields and not any(lists.values()):
        fields["body"] = _("Au moins un enregistrement est attendu (listes permises : %(known)s).",
                           known=", ".join(COLLECTIONS))
    total = sum(len(r) for r in lists.values() if isinstance(r, list))
    if total > MAX_RECORDS:
        fields["body"] = _("%(max)d enregistrements au plus par appel (reçu : %(count)d) ; un gros volume passe "
                           "par l'import de fichiers.", max=MAX_RECORDS, count=total)
    if fields:
        raise ValidationError(fields)
    parsed = Parsed()
    for name, records in lists.items():
        spec = COLLECTIONS[name]
        rows, seen = [], {}
        for i, record in enumerate(records):
            line = i + 1
            if not isinstance(record, dict):
                report.problems.append(Problem(spec.filename, line, _("Un objet est attendu.")))
                continue
            raw, bad = {}, False
            for column, value in record.items():
                if column not in spec.columns:
                    report.problems.append(Problem(spec.filename, line, _(
                        "Champ inconnu (permis : %(known)s).", known=", ".join(spec.columns)), field=column[:100]))
                    bad = True
                    continue
                raw[column] = _text(value)
                if raw[column] is None:
                    report.problems.append(Problem(spec.filename, line, _("Un texte, un nombre ou un booléen est "
                                                                          "attendu."), field=column))
                    bad = True
            if bad:
                continue
            values = parse_record(spec, raw, line, report)
            if values is None:
                continue
            key = tuple(values[k] for k in spec.key)
            if key in seen:
                report.problems.append(Problem(spec.filename, line, _("Doublon de l'enregistrement %(index)d.",
                                                                      index=seen[key] - 1)))
                continue
            seen[key] = line
            rows.append((line, values))
        parsed.rows[spec.kind] = rows
    return parsed


class _Scope:
    """The token's territories, and the checks that keep every record within them."""

    def __init__(self, territories: Sequence[Territory]) -> None:
        self.territory_ids = territory_ids_under(territories)
        self.ids = set(session.execute(self.territory_ids).scalars())

    def known_among(self, target_kind: str, column, keys) -> set[str]:
        """The referred keys that exist within the token's territories."""
        keys = list(set(keys))
        if not keys:
            return set()
        model = REFERRED[target_kind]
        return set(session.execute(select(column).where(column.in_(keys),
                                                        model.scope_clause(self.territory_ids))).scalars())

    def check(self, parsed: Parsed, report: ImportReport, communes: dict[str, int]) -> None:
        by_file = {spec.kind: spec.filename for spec in SPECS}
        for kind, (model, column) in OWN_ROWS.items():
            rows = parsed.rows.get(kind, [])
            keys = [values["external_ref"] for _l, values in rows]
            if not keys:
                continue
            existing = set(session.execute(select(column).where(column.in_(keys))).scalars())
            in_scope = set(session.execute(select(column).where(
                column.in_(keys), model.scope_clause(self.territory_ids))).scalars()) if existing else set()
            for line, values in rows:
                ref = values["external_ref"]
                if ref in existing and ref not in in_scope:
                    report.problems.append(Problem(by_file[kind], line, _(
                        "Objet existant hors du périmètre de ce jeton : %(ref)s.", ref=ref), field="external_ref"))
                elif kind in ("party", "service_point"):
                    self._check_commune(kind, by_file[kind], line, values, ref in existing, communes, report)
        self._check_meters(parsed, report)

    def _check_commune(self, kind, filename, line, values, exists_now, communes, report) -> None:
        """What is created or moved lands within the token's territories (a party's commune gives
        its territory; one without commune must already be in scope, through its contracts)."""
        insee = values["insee_code"]
        if insee is None:
            if kind == "party" and not exists_now:
                report.problems.append(Problem(filename, line, _(
                    "Obligatoire pour créer un interlocuteur par l'API : sa commune le place dans un territoire "
                    "du jeton."), field="insee_code"))
            return
        territory_id = communes.get(insee)
        if territory_id is None and kind == "service_point":
            return  # reported by the import's own check of the communes
        if territory_id not in self.ids:
            report.problems.append(Problem(filename, line, _(
                "Commune %(insee)s hors des territoires de ce jeton.", insee=insee), field="insee_code"))

    def _check_meters(self, parsed: Parsed, report: ImportReport) -> None:
        """A meter's lines replace its whole history: none of it may lie outside the token's territories."""
        rows = parsed.rows.get("meter", [])
        serials = list({values["serial"] for _l, values in rows})
        if not serials:
            return
        installed_outside = (
            select(MeterInstallation.id)
            .join(ServicePoint, ServicePoint.id == MeterInstallation.service_point_id)
            .where(MeterInstallation.meter_id == Meter.id, ServicePoint.territory_id.not_in(self.territory_ids)))
        outside = set(session.execute(select(Meter.serial).where(
            Meter.serial.in_(serials), exists(installed_outside))).scalars())
        for line, values in rows:
            if values["serial"] in outside:
                report.problems.append(Problem("meters.csv", line, _(
                    "Compteur posé hors du périmètre de ce jeton : %(serial)s.", serial=values["serial"]),
                    field="serial"))


def field_errors(report: ImportReport) -> dict[str, str]:
    """The report's problems by field path: ``invoices[2].amount``, ``meters[0]``, ``meters``."""
    fields: dict[str, str] = {}
    for problem in report.problems:
        name = COLLECTION_OF_FILE.get(problem.filename, "body")
        path = name if problem.line <= 0 or name == "body" else f"{name}[{problem.line - 1}]"
        message = problem.message
        if problem.field:
            path = f"{path}.{problem.field}"
            message = message.removeprefix(f"{problem.field} : ")
        fields[path] = f"{fields[path]} ; {message}" if path in fields else message
    return fields


def upsert(body: dict, *, territories: Sequence[Territory], audit_id: str) -> dict[str, dict[str, int]]:
    """Create or update the records of body, all or nothing, within territories: the counts per
    kind (created, updated, unchanged), or ValidationError naming every field at fault. Flushes."""
    report = ImportReport(every_field=True)
    parsed = _parse(body, report)
    scope = _Scope(territories)
    if not report.problems:
        import_parsed(parsed, report, audit_id=audit_id, audit_data={"source": "api"},
                      known_among=scope.known_among, unknown_suffix=OUT_OF_SCOPE, reveal_owners=False,
                      extra_check=scope.check)
    if report.problems:
        raise ValidationError(field_errors(report), message=_(
            "Données refusées : %(count)d problème(s), rien n'a été écrit.", count=len(report.problems)))
    return {kind: {k: v for k, v in counts.items() if k != "rejected"} for kind, counts in report.counts.items()}

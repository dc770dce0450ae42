"""Eligibility rules of template items, as data.

A rule is a list of conditions that must all hold; an empty rule always holds. A condition is a
JSON object ``{"fact": "overdue_amount", "op": "gt", "value": "0"}`` naming one fact of the
current context (FACTS), an operator allowed for that fact's type (OPERATORS) and a value.
Administrators edit them as rows in the referentials' pages; ``parse`` refuses a malformed rule
with a message naming the faulty condition, so that nothing unreadable is ever stored, and
``evaluate`` says, for an ineligible item, which condition failed and with what value.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.labels import LABELS, label
from app.web import money

NO_CONTRACT = "none"  # the contract status when the context has no current contract


@dataclass(frozen=True)
class Fact:
    code: str
    label: object
    type: str  # "choice", "codes", "number", "money", "bool", "territory"
    choices: str | None = None  # the LABELS kind of a choice fact's codes


FACTS: dict[str, Fact] = {fact.code: fact for fact in (
    Fact("channel", _l("Canal du contact"), "choice", "channel"),
    Fact("direction", _l("Sens du contact"), "choice", "direction"),
    Fact("party_status", _l("Statut du client"), "choice", "party_status"),
    Fact("vulnerable", _l("Client en situation de fragilité"), "bool"),
    Fact("contract_status", _l("Statut du contrat courant"), "choice", "rule_contract_status"),
    Fact("service_point_kind", _l("Énergie du contrat courant"), "choice", "service_point_kind"),
    Fact("main_residence", _l("Résidence principale"), "bool"),
    Fact("territory", _l("Territoire"), "territory"),
    Fact("overdue_amount", _l("Montant impayé échu"), "money"),
    Fact("overdue_invoices", _l("Nombre de factures impayées échues"), "number"),
    Fact("open_dossiers", _l("Nombre de dossiers en cours du client"), "number"),
    Fact("open_dossier_types", _l("Classifications des dossiers en cours"), "codes"),
)}

OPERATORS: dict[str, dict[str, object]] = {
    "choice": {"in": _l("est parmi"), "not_in": _l("n'est pas parmi")},
    "codes": {"includes": _l("comprend"), "excludes": _l("ne comprend pas")},
    "number": {"eq": _l("="), "gt": _l(">"), "gte": _l("≥"), "lt": _l("<"), "lte": _l("≤")},
    "money": {"eq": _l("="), "gt": _l(">"), "gte": _l("≥"), "lt": _l("<"), "lte": _l("≤")},
    "bool": {"is": _l("est")},
    "territory": {"under": _l("est dans"), "not_under": _l("n'est pas dans")},
}


class RuleError(ValueError):
    """A rule that cannot be stored: the message says which condition and why."""


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str
    value: object  # list[str] (choice, codes), Decimal (number, money), bool, str (territory code)

    def as_json(self) -> dict:
        value = self.value
        if isinstance(value, Decimal):
            value = str(value)
        return {"fact": self.fact, "op": self.op, "value": value}


MAX_NUMBER = Decimal("1000000000")  # a rule's amount or count beyond this is a typing error


def _number(raw: object, *, money_value: bool) -> Decimal:
    text = str(raw).strip().replace(",", ".").rstrip("€").strip()
    for space in (" ", "\u00a0", "\u202f"):  # "1 234,56" as typed or copied
        text = text.replace(space, "")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise RuleError(_("« %(value)s » n'est pas un nombre.", value=raw)) from None
    if not value.is_finite():
        raise RuleError(_("« %(value)s » n'est pas un nombre.", value=raw))
    if value.adjusted() > MAX_NUMBER.adjusted():  # compared by exponent: abs(1e999999999) overflows
        raise RuleError(_("« %(value)s » est hors des valeurs possibles.", value=raw))
    return value.quantize(Decimal("0.01")) if money_value else value


def _codes(raw: object) -> list[str]:
    if isinstance(raw, str):
        raw = [part for part in (p.strip() for p in raw.split(",")) if part]
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
        raise RuleError(_("Donnez au moins une valeur."))
    return sorted(set(raw))


def parse_condition(raw: object, *, known_territories: set[str] | None = None) -> Condition:
    if not isinstance(raw, Mapping):
        raise RuleError(_("Une condition doit être un objet {fact, op, value}."))
    raw_fact = raw.get("fact")
    fact = FACTS.get(raw_fact) if isinstance(raw_fact, str) else None
    if fact is None:
        raise RuleError(_("Critère inconnu : %(fact)s.", fact=raw_fact if raw_fact is not None else "—"))
    op = raw.get("op")
    if not isinstance(op, str) or op not in OPERATORS[fact.type]:
        raise RuleError(_("Opérateur « %(op)s » impossible pour le critère « %(fact)s ».", op=op, fact=fact.label))
    raw_value = raw.get("value")
    if fact.type == "choice":
        value: object = _codes(raw_value)
        allowed = LABELS[fact.choices]  # type: ignore[index]
        unknown = [v for v in value if v not in allowed]  # type: ignore[union-attr]
        if unknown:
            raise RuleError(_("Valeur inconnue pour « %(fact)s » : %(value)s.", fact=fact.label, value=unknown[0]))
    elif fact.type == "codes":
        value = _codes(raw_value)
    elif fact.type in ("number", "money"):
        value = _number(raw_value, money_value=fact.type == "money")
    elif fact.type == "bool":
        if isinstance(raw_value, str) and raw_value.lower() in ("true", "false", "oui", "non"):
            raw_value = raw_value.lower() in ("true", "oui")
        if not isinstance(raw_value, bool):
            raise RuleError(_("« %(fact)s » attend oui ou non.", fact=fact.label))
        value = raw_value
    else:  # territory
        value = raw_value.strip() if isinstance(raw_value, str) else ""
        if not value or (known_territories is not None and value not in known_territories):
            raise RuleError(_("Territoire inconnu : %(code)s.", code=value or "—"))
    return Condition(fact=fact.code, op=op, value=value)


def parse(raw: object, *, known_territories: set[str] | None = None) -> list[Condition]:
    """The conditions of a stored or submitted rule; RuleError names the first faulty one."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise RuleError(_("Une règle est une liste de conditions."))
    conditions = []
    for number, item in enumerate(raw, start=1):
        try:
            conditions.append(parse_condition(item, known_territories=known_territories))
        except RuleError as exc:
            raise RuleError(_("Condition %(number)d : %(error)s", number=number, error=exc)) from None
    return conditions


def to_json(conditions: list[Condition]) -> list[dict] | None:
    return [c.as_json() for c in conditions] or None


def _holds(condition: Condition, actual: object) -> bool:
    op, value = condition.op, condition.value
    if op == "in":
        return actual in value  # type: ignore[operator]
    if op == "not_in":
        return actual not in value  # type: ignore[operator]
    if op == "includes":
        return bool(set(actual) & set(value))  # type: ignore[call-overload,arg-type]
    if op == "excludes":
        return not set(actual) & set(value)  # type: ignore[call-overload,arg-type]
    if op == "is":
        return bool(actual) == value
    if op in ("under", "not_under"):
        inside = value in (actual or ())  # type: ignore[operator]
        return inside if op == "under" else not inside
    if actual is None:
        return False
    actual = Decimal(actual)  # type: ignore[arg-type]
    return {"eq": actual == value, "gt": actual > value, "gte": actual >= value,  # type: ignore[operator]
            "lt": actual < value, "lte": actual <= value}[op]  # type: ignore[operator]


def _shown(fact: Fact, value: object) -> str:
    if value is None:
        return "—"
    if fact.type == "choice":
        if isinstance(value, list):
            return ", ".join(label(v, fact.choices) for v in value)  # type: ignore[arg-type]
        return label(value, fact.choices)  # type: ignore[arg-type]
    if fact.type == "codes" or fact.type == "territory":
        if isinstance(value, (list, tuple, set, frozenset)):
            return ", ".join(sorted(value)) or _("aucun")
        return str(value)
    if fact.type == "bool":
        return _("oui") if value else _("non")
    if fact.type == "money":
        return money(Decimal(value))  # type: ignore[arg-type]
    return str(value)


def describe(condition: Condition) -> str:
    """The condition as an administrator and an agent read it: "Montant impayé échu > 0,00 €"."""
    fact = FACTS[condition.fact]
    return f"{fact.label} {OPERATORS[fact.type][condition.op]} {_shown(fact, condition.value)}"


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reasons: list[str]  # for an ineligible item: each failed condition and the actual value


def evaluate(conditions: list[Condition], facts: Mapping[str, object], *,
             hidden: frozenset[str] = frozenset()) -> Verdict:
    """Whether every condition holds against the context's facts, and if not, why. A fact in hidden
    (a sensitive one the agent may not see: app.parties.sensitive) still decides, but its value
    reads « masqué » in the reasons."""
    reasons = []
    for condition in conditions:
        actual = facts.get(condition.fact)
        if not _holds(condition, actual):
            fact = FACTS[condition.fact]
            if fact.type == "territory":  # the codes from the root down: the deepest names the place
                actual = actual[-1] if actual else None  # type: ignore[index]
            shown = _("masqué") if condition.fact in hidden else _shown(fact, actual)
            reasons.append(_("%(condition)s (ici : %(actual)s)", condition=describe(condition), actual=shown))
    return Verdict(eligible=not reasons, reasons=reasons)

"""The one place where a letter's data is built: plain strings, dates and amounts written the
French way, from the customer, contract, invoice, dossier, agent and organisation it is about.

Every section is always there with every field, empty when the letter is about no such object, so
a template renders whatever it is generated for; a field outside ``FIELDS`` is unknown, and
``check`` refuses the template that names it (``sample`` has exactly the same shape).

The customer's sensitive values (birth date, bank details: app.parties.sensitive) are always
masked ("FR76 •••• … 0189", as a bank prints it), whoever generates the letter or mail: both are
kept in the dossier, which every agent of its territory reads, with or without ``party.sensitive``.
The vulnerability flag is never a letter field.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency

from app.parties import sensitive

LOCALE = "fr_FR"
FIELDS: dict[str, tuple[str, ...]] = {
    "customer": ("number", "name", "civility", "first_name", "last_name", "salutation",
                 "address_1", "address_2", "address_3", "email", "birth_date", "iban", "bic"),
    "contract": ("number", "offer", "start_date", "energy", "address_1", "address_2"),
    "invoice": ("number", "issued_on", "due_on", "amount", "amount_paid", "balance"),
    "dossier": ("reference", "subject", "classification", "opened_on"),
    "agent": ("name", "email"),
    "organisation": ("name", "address_1", "address_2", "phone", "email"),
    # From the answers of the dossier's process steps, when it has them:
    "plan": ("instalments", "instalment_amount", "first_due_on", "total"),  # a payment plan
    # What is still owed on the dossier's invoices (a relaunch groups a contract's): it falls as payments come.
    "overdue": ("amount", "invoice_count", "invoice_numbers", "since"),
    "move": ("move_in_on", "index_value"),  # a move-in
}
ENERGY = {"water": "eau", "electricity": "électricité", "gas": "gaz"}
SALUTATION = {"Mme": "Madame", "M.": "Monsieur", "M": "Monsieur"}


def french_date(value: date | None) -> str:
    """"1er décembre 2026", "15 janvier 2027"; "" for no date."""
    if value is None:
        return ""
    text = format_date(value, "d MMMM y", locale=LOCALE)
    return "1er" + text[1:] if value.day == 1 else text


def euros(value: Decimal | None) -> str:
    """"1 234,50 €" (narrow no-break spaces, as French typography has them); "" for no amount."""
    return "" if value is None else format_currency(value, "EUR", locale=LOCALE)


def _lines(obj, count: int) -> list[str]:
    lines = list(obj.address_lines) if obj is not None else []
    return (lines + [""] * count)[:count]


def _section(name: str, values: dict) -> dict[str, str]:
    return {field: values.get(field) or "" for field in FIELDS[name]}


def _day(value) -> str:
    if isinstance(value, date):
        return french_date(value)
    try:
        return french_date(date.fromisoformat(str(value))) if value else ""
    except ValueError:
        return str(value)


def _plan(answers: dict, invoice) -> dict:
    try:
        count = int(answers.get("instalments") or 0)
    except (TypeError, ValueError):
        count = 0
    if count <= 0:
        return {}
    total = invoice.amount - (invoice.amount_paid or Decimal("0")) if invoice is not None else None
    share = (total / count).quantize(Decimal("0.01")) if total is not None else None
    return {"instalments": str(count), "instalment_amount": euros(share), "total": euros(total),
            "first_due_on": _day(answers.get("first_due_on"))}


def _owed(invoices) -> dict:
    owed = [i for i in invoices or () if i.status in ("open", "partially_paid") and i.amount > i.amount_paid]
    if not owed:
        return {}
    return {"amount": euros(sum((i.amount - i.amount_paid for i in owed), Decimal("0.00"))),
            "invoice_count": str(len(owed)), "invoice_numbers": ", ".join(i.number for i in owed),
            "since": french_date(min(i.due_on for i in owed))}


def _sensitive(party, *, allowed: bool) -> dict:
    """The customer's birth date and bank details, in full or masked."""
    birth_date = party.birth_date
    return {"birth_date": (french_date(birth_date) if allowed else sensitive.MASKED_DATE) if birth_date else "",
            "iban": sensitive.display("iban", party.iban, allowed=allowed),
            "bic": sensitive.display("bic", party.bic, allowed=allowed)}


def build(*, party=None, contract=None, invoice=None, dossier=None, agent=None,
          organisation: dict | None = None, today: date, timezone: str = "Europe/Paris",
          answers: dict | None = None, invoices=None) -> dict:
    """The letter's data; each argument may be None. organisation: the utility's name, address,
    phone and email as configured; timezone: where the dossier's opening day is counted; answers:
    what the dossier's process steps recorded (a payment plan's instalments, a move-in date…);
    invoices: the dossier's invoices, whose balances still owed make the "overdue" section; agent:
    who generates it (None: a job)."""
    answers = answers or {}
    customer = {}
    if party is not None:
        lines = _lines(party, 3)
        customer = {
            "number": party.number, "name": party.display_name, "civility": party.civility,
            "first_name": party.first_name, "last_name": party.last_name or party.company_name,
            "salutation": SALUTATION.get(party.civility or "", "Madame, Monsieur"),
            "address_1": lines[0], "address_2": lines[1], "address_3": lines[2],
            "email": party.emails[0].address if party.emails else "",
            **_sensitive(party, allowed=False),  # kept in the dossier: readable without the permission
        }
    contract_values = {}
    if contract is not None:
        point = contract.service_point
        lines = _lines(point, 2)
        contract_values = {"number": contract.number, "offer": contract.offer,
                           "start_date": french_date(contract.start_date),
                           "energy": ENERGY.get(point.kind, point.kind) if point else "",
                           "address_1": lines[0], "address_2": lines[1]}
    invoice_values = {}
    if invoice is not None:
        invoice_values = {"number": invoice.number, "issued_on": french_date(invoice.issued_on),
                          "due_on": french_date(invoice.due_on), "amount": euros(invoice.amount),
                          "amount_paid": euros(invoice.amount_paid),
                          "balance": euros(invoice.amount - (invoice.amount_paid or Decimal("0")))}
    dossier_values = {}
    if dossier is not None:
        dossier_values = {"reference": dossier.reference, "subject": dossier.subject,
                          "classification": dossier.dossier_type.label if dossier.dossier_type else "",
                          "opened_on": french_date(dossier.created_at.astimezone(ZoneInfo(timezone)).date()
                                                   if dossier.created_at else None)}
    agent_values = {"name": agent.full_name, "email": agent.email} if agent is not None else {}
    return {
        "customer": _section("customer", customer), "contract": _section("contract", contract_values),
        "invoice": _section("invoice", invoice_values), "dossier": _section("dossier", dossier_values),
        "agent": _section("agent", agent_values), "organisation": _section("organisation", organisation or {}),
        "plan": _section("plan", _plan(answers, invoice)),
        "overdue": _section("overdue", _owed(invoices)),
        "move": _section("move", {"move_in_on": _day(answers.get("move_in_on")),
                                  "index_value": str(answers.get("index_value") or "")}),
        "today": french_date(today),
    }


def sample() -> dict:
    """Data of the same shape as ``build``'s, every field filled: to check a template at upload."""
    data = {name: {field: f"[{name}.{field}]" for field in fields} for name, fields in FIELDS.items()}
    data["today"] = french_date(date(2026, 1, 1))
    return data

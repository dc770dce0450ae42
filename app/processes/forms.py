"""Step forms: a user task's JSON Schema (draft 2020-12) and optional RJSF-style UI schema become the
fields a page shows (``build``), the posted strings become typed answers (``parse``, or ``posted`` for
the text as typed: drafts) and the answers are checked with one French message per field
(``validate``).

Conventions (bpmn/README.md, "Forms"): the widget follows the property's type and format, refined by
"ui:widget" (textarea, radio, tel); an amount in euros is a ``"type": "number"`` property with
``"format": "amount"`` (a Decimal with two decimals at most); "ui:visibleIf" shows a field only while
other fields hold given values, and a hidden field is neither kept nor required. Posted inputs are
named FIELD_PREFIX + the property name. Only properties of a scalar type (string, integer, number,
boolean) make fields. Pure Python: no database, no SpiffWorkflow; the messages go through
flask_babel, which gives the French msgid back when no application is running.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_decimal
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

FIELD_PREFIX = "f-"  # posted names: "f-answer", apart from the page's own csrf_token, action…
WIDGETS = ("text", "textarea", "number", "integer", "amount", "checkbox", "select", "radio", "date", "email", "tel")
SCALARS = ("string", "integer", "number", "boolean")
CENT = Decimal("0.01")
MAX_DIGITS = 15  # a meter index, a count or an amount in cents has fewer
POSTED_MAX = 10_000  # characters kept of a posted field without maxLength (drafts, forms shown again)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_FRENCH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_SEPARATORS = dict.fromkeys(map(ord, " \u00a0\u202f"), None)  # thousands separators, typed or pasted


@dataclass
class Field:
    """One input of a step form, ready for the form_fields macro (processes/_form_fields.html)."""

    name: str
    label: str
    widget: str  # one of WIDGETS
    required: bool = False
    help: str | None = None
    placeholder: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)  # (input value, label) of a select or radio
    minimum: int | float | Decimal | None = None
    maximum: int | float | Decimal | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    step: str | None = None
    value: str | bool = ""  # the input's value; a bool for a checkbox
    error: str | None = None
    visible_if: dict[str, Any] | None = None  # {"other_field": value or [values]}

    @property
    def input_name(self) -> str:
        return FIELD_PREFIX + self.name


# --- Reading the schemas ---------------------------------------------------------------------------

def _type(prop: dict) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first type that is not null
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and ("enum" in prop or "oneOf" in prop):
        return "string"
    return kind


def _properties(schema: dict) -> dict[str, dict]:
    """The properties a form input can hold, in schema order."""
    return {name: prop for name, prop in (schema.get("properties") or {}).items()
            if isinstance(prop, dict) and _type(prop) in SCALARS}


def _ui(ui: dict | None, name: str) -> dict:
    options = (ui or {}).get(name)
    return options if isinstance(options, dict) else {}


def _humanize(value: Any) -> str:
    text = _text(value).replace("_", " ")
    return text[:1].upper() + text[1:]


def _choices(prop: dict, ui: dict) -> list[tuple[Any, str]]:
    """(value, label) of an enum ("enum" labelled by "ui:enumNames", or "oneOf" of {"const", "title"})."""
    if "enum" in prop:
        names = ui.get("ui:enumNames") or []
        return [(v, str(names[i]) if i < len(names) else _humanize(v)) for i, v in enumerate(prop["enum"])]
    return [(c["const"], str(c.get("title") or _humanize(c["const"])))
            for c in prop.get("oneOf") or [] if isinstance(c, dict) and "const" in c]


def _widget(prop: dict, ui: dict) -> str:
    kind, wanted, fmt = _type(prop), ui.get("ui:widget"), prop.get("format")
    if kind == "boolean":
        return "checkbox"
    if _choices(prop, ui):
        return "radio" if wanted == "radio" else "select"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "amount" if fmt == "amount" else "number"
    if fmt in ("date", "email"):
        return fmt
    if wanted == "tel" or fmt == "phone":
        return "tel"
    return "textarea" if wanted == "textarea" else "text"


def _order(names: list[str], order: list[str]) -> list[str]:
    """"ui:order" first ("*" stands for the fields it does not name), then the rest in schema order."""
    rest = [n for n in names if n not in order]
    ordered: list[str] = []
    for name in order:
        ordered += rest if name == "*" else [name] if name in names else []
    return ordered if "*" in order else ordered + rest


def _condition(ui: dict) -> dict[str, Any] | None:
    condition = ui.get("ui:visibleIf")
    return condition if isinstance(condition, dict) and condition else None


def _matches(condition: dict[str, Any], data: Mapping[str, Any]) -> bool:
    return all(name in data and data[name] in (wanted if isinstance(wanted, list) else [wanted])
               for name, wanted in condition.items())


def _hidden(ui: dict | None, data: Mapping[str, Any]) -> set[str]:
    """The fields whose "ui:visibleIf" fails on data. A hidden field's value does not count: a field
    shown under a hidden one is hidden too."""
    conditions = {name: c for name in (ui or {}) if (c := _condition(_ui(ui, name)))}
    hidden: set[str] = set()
    while True:
        shown = {k: v for k, v in data.items() if k not in hidden}
        more = {name for name, c in conditions.items() if name not in hidden and not _matches(c, shown)}
        if not more:
            return hidden
        hidden |= more


# --- Values: typed ↔ input strings -----------------------------------------------------------------

def _cents(amount: Decimal) -> Decimal:
    """12.5 → 12.50; an amount with more than two decimals stays as it is (validation reports it)."""
    try:
        return amount.quantize(CENT) if _places(amount) <= 2 else amount
    except InvalidOperation:  # more digits than the decimal context holds
        return amount


def _places(number: Decimal) -> int:
    """The decimals that matter: 1 for 12.50, 0 for 100."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def _text(value: Any, widget: str = "text") -> str:
    """A value as an input holds it: ISO dates, plain decimals (two places for an amount)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime) and widget == "date":
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        if not number.is_finite():
            return str(value)
        return format(_cents(number) if widget == "amount" else number, "f")
    return str(value)


def _clean(raw: Any) -> str:
    """A posted string stripped, without NUL characters, with \\n line ends."""
    return raw.replace("\x00", "").replace("\r\n", "\n").strip() if isinstance(raw, str) else ""


def _checked(value: Any) -> bool:
    """A checkbox's state from a posted value (absent: unchecked) or a stored one."""
    if isinstance(value, bool):
        return value
    return value is not None and _clean(str(value)).lower() not in ("", "false", "0", "off")


def _number(text: str) -> Decimal | None:
    """"1 234,50" or "1234.5" as a Decimal; None when it is no plain decimal number, or a longer one
    than any index or amount (MAX_DIGITS): the type error says so, nothing huge reaches the engine."""
    plain = text.translate(_SEPARATORS).replace(",", ".")
    if not _NUMBER.fullmatch(plain) or sum(c.isdigit() for c in plain) > MAX_DIGITS:
        return None
    return Decimal(plain)


def _value(text: str, prop: dict, ui: dict, widget: str) -> Any:
    """The typed value of a posted string; a string that does not parse stays, for validation to report."""
    choices = _choices(prop, ui)
    if choices:
        return next((value for value, _label in choices if _text(value) == text), text)
    if widget in ("integer", "number", "amount"):
        number = _number(text)
        if number is None:
            return text
        if widget == "integer":
            return int(number) if number == number.to_integral_value() else text
        return _cents(number) if widget == "amount" else number
    if widget == "date" and (match := _FRENCH_DATE.fullmatch(text)):
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return text


# --- Public API -------------------------------------------------------------------------------------

def prefill(schema: dict, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values of the process data that the form's properties name."""
    data = data or {}
    return {name: data[name] for name in schema.get("properties") or {} if name in data}


def build(schema: dict, ui: dict | None, data: Mapping[str, Any] | None,
          errors: Mapping[str, str] | None = None) -> list[Field]:
    """The form's fields in "ui:order" order (then schema order), filled from data (the process data,
    or ``posted`` text shown again with its errors, or a draft), each with its error from errors."""
    properties, data, errors = _properties(schema), data or {}, errors or {}
    required = set(schema.get("required") or [])
    order = (ui or {}).get("ui:order") or []
    return [_field(name, properties[name], _ui(ui, name), name in required, data, errors.get(name))
            for name in _order(list(properties), order)]


def _field(name: str, prop: dict, ui: dict, required: bool, data: Mapping[str, Any], error: str | None) -> Field:
    widget = _widget(prop, ui)
    value = data[name] if name in data else prop.get("default")
    low, high = prop.get("minimum"), prop.get("maximum")
    if widget == "integer":  # an exclusive bound as the inclusive one of whole numbers
        low = math.floor(prop["exclusiveMinimum"]) + 1 if low is None and "exclusiveMinimum" in prop else low
        high = math.ceil(prop["exclusiveMaximum"]) - 1 if high is None and "exclusiveMaximum" in prop else high
    step = _text(prop["multipleOf"]) if "multipleOf" in prop else {"amount": "0.01", "number": "any"}.get(widget)
    return Field(
        name=name, label=str(ui.get("ui:title") or prop.get("title") or name), widget=widget, required=required,
        help=ui.get("ui:help") or prop.get("description"), placeholder=ui.get("ui:placeholder"),
        options=[(_text(v), label) for v, label in _choices(prop, ui)], minimum=low, maximum=high,
        min_length=prop.get("minLength"), max_length=prop.get("maxLength"), pattern=prop.get("pattern"),
        step=step if widget in ("integer", "number", "amount") else None,
        value=_checked(value) if widget == "checkbox" else _text(value, widget),
        error=error, visible_if=_condition(ui),
    )


def posted(schema: dict, form: Mapping[str, str]) -> dict[str, str | bool]:
    """The inputs as posted, untyped and unchecked, for a draft or a form shown again with its errors:
    each field's text (NUL characters removed, kept even when empty) and True/False for a checkbox."""
    values: dict[str, str | bool] = {}
    for name, prop in _properties(schema).items():
        raw = form.get(FIELD_PREFIX + name)
        if _type(prop) == "boolean":
            values[name] = _checked(raw)
        elif raw is not None:
            values[name] = _clean(raw)[:prop.get("maxLength") or POSTED_MAX]
    return values


def parse(schema: dict, ui: dict | None, form: Mapping[str, str]) -> dict[str, Any]:
    """The typed answers of a posted form (a dict or a werkzeug MultiDict): a checkbox is True or
    False, an integer an int, a number a Decimal (an amount with two decimals), a date its ISO
    string; empty inputs are left out, as are unknown names and fields hidden by "ui:visibleIf"."""
    data: dict[str, Any] = {}
    for name, prop in _properties(schema).items():
        options, raw = _ui(ui, name), form.get(FIELD_PREFIX + name)
        widget = _widget(prop, options)
        if widget == "checkbox":
            data[name] = _checked(raw)
        elif text := _clean(raw):
            data[name] = _value(text, prop, options, widget)
    hidden = _hidden(ui, data)
    return {name: value for name, value in data.items() if name not in hidden}


# --- Validation ------------------------------------------------------------------------------------

def _multiple_of(validator: Any, step: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """multipleOf in exact decimals: jsonschema's own cannot divide a Decimal by a float, and its float
    arithmetic finds 0.3 no multiple of 0.1."""
    if not validator.is_type(instance, "number"):
        return
    try:
        failed = bool(Decimal(str(instance)) % Decimal(str(step)))
    except InvalidOperation:  # infinite, or a quotient beyond the decimal context
        failed = True
    if failed:
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


def _is_amount(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return True  # "type" reports what is no number
    number = Decimal(str(value))
    return number.is_finite() and _places(number) <= 2


Validator = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})
FORMATS = FormatChecker()  # the standard formats (date, email…) and "amount"
FORMATS.checks("amount")(_is_amount)


def _number_text(value: Any) -> str:
    """A number the French way: 1 234,5."""
    return format_decimal(Decimal(str(value)), locale=get_locale() or "fr_FR", decimal_quantization=False)


def _type_message(prop: dict) -> str:
    kind = "amount" if prop.get("format") == "amount" else _type(prop)
    if kind == "integer":
        return _("Saisissez un nombre entier.")
    if kind == "number":
        return _("Saisissez un nombre.")
    if kind == "amount":
        return _("Saisissez un montant en euros, par exemple 12,50.")
    if kind == "boolean":
        return _("Cochez la case ou laissez-la vide.")
    return _("Saisissez un texte.")


def _format_message(fmt: str) -> str:
    if fmt == "date":
        return _("Saisissez une date valide (jj/mm/aaaa).")
    if fmt == "email":
        return _("Saisissez une adresse e-mail valide.")
    if fmt == "amount":
        return _("Saisissez un montant avec deux décimales au plus.")
    return _("Le format n'est pas valide.")


MESSAGES = {  # keyword → message from the keyword's value
    "required": lambda v: _("Ce champ est obligatoire."),
    "minimum": lambda v: _("La valeur doit être au moins %(min)s.", min=_number_text(v)),
    "maximum": lambda v: _("La valeur doit être au plus %(max)s.", max=_number_text(v)),
    "exclusiveMinimum": lambda v: _("La valeur doit être supérieure à %(min)s.", min=_number_text(v)),
    "exclusiveMaximum": lambda v: _("La valeur doit être inférieure à %(max)s.", max=_number_text(v)),
    "multipleOf": lambda v: _("La valeur doit être un multiple de %(step)s.", step=_number_text(v)),
    "minLength": lambda v: ngettext("%(count)s caractère au moins.", "%(count)s caractères au moins.", v,
                                    count=_number_text(v)),
    "maxLength": lambda v: ngettext("%(count)s caractère au plus.", "%(count)s caractères au plus.", v,
                                    count=_number_text(v)),
    "pattern": lambda v: _("Le format n'est pas valide."),
    "format": _format_message,
    "enum": lambda v: _("Choisissez une des valeurs proposées."),
    "const": lambda v: (_("Cochez cette case pour continuer.") if v is True
                        else _("Choisissez une des valeurs proposées.")),
    "oneOf": lambda v: _("Choisissez une des valeurs proposées."),
}


def _message(error: ValidationError, prop: dict) -> str:
    if error.validator == "type":
        return _type_message(prop)
    message = MESSAGES.get(str(error.validator))
    return message(error.validator_value) if message else _("La valeur n'est pas valide.")


def _names(error: ValidationError) -> list[str]:
    """The fields an error is about: the missing ones of "required", else the first step of its path."""
    if error.validator == "required" and not error.path and isinstance(error.instance, dict):
        return [name for name in error.validator_value if name not in error.instance]
    return [str(error.path[0])] if error.path else [""]


def validate(schema: dict, ui: dict | None, data: Mapping[str, Any]) -> dict[str, str]:
    """Field name → the French message of its first error; errors tied to no field of the form are
    under "". A field hidden by "ui:visibleIf" is not required."""
    hidden = _hidden(ui, data)
    checked = {**schema, "required": [n for n in schema.get("required") or [] if n not in hidden]}
    properties = _properties(schema)
    errors: dict[str, str] = {}
    for error in Validator(checked, format_checker=FORMATS).iter_errors(dict(data)):
        for name in _names(error):
            if name in properties:
                errors.setdefault(name, _message(error, properties[name]))
            else:
                errors.setdefault("", _("Le formulaire n'est pas valide : %(reason)s", reason=error.message))
    return errors

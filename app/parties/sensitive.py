"""Sensitive personal data of a party (GDPR): the one place that says which fields are sensitive,
who may see them, and how they read when masked; plus the validation of bank details.

- **Which**: the bank details (``iban``, ``bic``), the birth date and the vulnerability flag.
- **Who**: an agent holding ``party.sensitive``. Nobody else: an agent without it, a scheduled job
  (no agent: ``None``), an API token (no API permission grants it, so API payloads carry none of
  these values).
- **How masked**: the IBAN keeps its country and check digits and its last four characters
  (``FR76 •••• •••• •••• •••• ••• 0189`` reads "a French account ending 0189", enough to confirm
  with the customer); the BIC, the birth date, the vulnerability flag: nothing of the value.

Business rules that *read* these values (dunning guardrails, contact-template rules, the letter
templates' eligibility) read the model directly: masking is for what leaves the server, not for
decisions. What leaves the server goes through ``shown``/``display`` (screens, exports,
documents, mails) or ``refuse_changes`` (writes).
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask_babel import format_date
from flask_babel import lazy_gettext as _l

from app.errors import BusinessError

PERMISSION = "party.sensitive"
BANK_FIELDS = ("iban", "bic")
FIELDS = ("iban", "bic", "birth_date", "vulnerable")
# The party fields an agent's edit form carries that are sensitive (vulnerable is set by the
# processes' steps and the billing import, not typed by an agent).
EDITABLE = ("birth_date", "iban", "bic")
DOT = "•"
MASKED = _l("masqué")
MASKED_DATE = "•• / •• / ••••"

# ISO 13616: an IBAN's length per country (the SEPA countries and a few neighbours); a country
# not listed is checked by the generic pattern and the mod-97 key only.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


# --- Who may see ---------------------------------------------------------------------------------


def may_see(agent: Any) -> bool:
    """Whether this agent may see (and change) a party's sensitive values. ``None`` is a scheduled
    job or a system: masked. Anything without ``can`` (an anonymous user) is masked too."""
    can = getattr(agent, "can", None)
    return bool(can is not None and can(PERMISSION))


def is_sensitive(field: str) -> bool:
    return field in FIELDS


# --- How it reads ---------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return "".join(str(value or "").split()).upper()


def format_iban(iban: str | None) -> str:
    """An IBAN in groups of four, as printed on a bank statement ("FR76 3000 6000 …")."""
    compact = _compact(iban)
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def mask_iban(iban: str | None) -> str:
    """The country and check digits, then dots, then the last four characters: "FR76 •••• … 0189"."""
    compact = _compact(iban)
    if not compact:
        return ""
    if len(compact) <= 8:
        return DOT * len(compact)
    middle = DOT * (len(compact) - 8)
    groups = [middle[i:i + 4] for i in range(0, len(middle), 4)]
    return " ".join([compact[:4], *groups, compact[-4:]])


def mask_bic(bic: str | None) -> str:
    compact = _compact(bic)
    return DOT * len(compact) if compact else ""


def display(field: str, value: Any, *, allowed: bool) -> str:
    """The text a person reads for this field's value: the value itself (formatted) when allowed,
    else its mask; "" for no value. ``field`` need not be sensitive (then shown as it is)."""
    if value is None or value == "":
        return ""
    if field == "iban":
        return format_iban(value) if allowed else mask_iban(value)
    if field == "bic":
        return _compact(value) if allowed else mask_bic(value)
    if field == "birth_date":
        if not allowed:
            return MASKED_DATE
        if isinstance(value, date):
            return format_date(value)
        try:
            return format_date(date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    if field == "vulnerable":
        if not allowed:
            return str(MASKED)
        return str(_l("oui") if value else _l("non"))
    return str(value)


def shown(party: Any, field: str, agent: Any) -> str:
    """The party's value of this field as the agent may read it ("" for none)."""
    return display(field, getattr(party, field, None), allowed=may_see(agent))


def value_for(party: Any, field: str, agent: Any) -> Any:
    """The raw value when the agent may see it, else None: for code that decides whether to show
    something at all (the vulnerability alert is not shown rather than shown as "masqué")."""
    return getattr(party, field, None) if may_see(agent) else None


# --- Writes ----------------------------------------------------------------------------------------


def refuse_changes(agent: Any, fields) -> None:
    """Refuse a change that names a sensitive field when the agent may not see those fields: the
    edit form does not show them, so a request carrying them was crafted or is stale."""
    named = [f for f in fields if f in FIELDS]
    if named and not may_see(agent):
        from app.parties.editing import InvalidChanges

        raise InvalidChanges({f: str(_l("Vous n'êtes pas habilité à consulter ni à modifier ce champ "
                                        "(données sensibles).")) for f in named})


def normalise_iban(value: Any) -> str | None:
    """The IBAN in upper case without spaces, checked (ISO 13616: pattern, country length, mod-97
    key); None for nothing typed. The message never repeats the value (it is sensitive)."""
    compact = _compact(value).replace("-", "")
    if not compact:
        return None
    if not _IBAN.fullmatch(compact):
        raise BusinessError(_l("IBAN invalide : deux lettres du pays, deux chiffres de clé, puis de 11 à 30 "
                               "lettres ou chiffres (par exemple FR76 3000 6000 0112 3456 7890 189)."), field="iban")
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        raise BusinessError(_l("IBAN invalide : %(expected)d caractères attendus pour ce pays (%(got)d saisis).",
                               expected=expected, got=len(compact)), field="iban")
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    if int(digits) % 97 != 1:
        raise BusinessError(_l("IBAN invalide : la clé de contrôle ne correspond pas (vérifiez la saisie)."),
                            field="iban")
    return compact


def normalise_bic(value: Any) -> str | None:
    """The BIC in upper case without spaces, 8 or 11 characters (bank, country, location, branch);
    None for nothing typed."""
    compact = _compact(value)
    if not compact:
        return None
    if not _BIC.fullmatch(compact):
        raise BusinessError(_l("BIC invalide : 8 ou 11 caractères (4 lettres de la banque, 2 du pays, 2 lettres ou "
                               "chiffres de la localité, éventuellement 3 de l'agence)."), field="bic")
    return compact

"""Phone numbers: stored in E.164, shown in the French national format."""
from __future__ import annotations

import phonenumbers
from flask_babel import lazy_gettext as _l

from app.errors import BusinessError


def normalise_phone(raw: str, *, region: str = "FR") -> str:
    """'06 12 34 56 78', '+33612345678' and '0033 6 12 34 56 78' all give '+33612345678'."""
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise BusinessError(_l("Numéro de téléphone illisible : « %(number)s ».", number=raw),
                            field="phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise BusinessError(_l("Numéro de téléphone invalide : « %(number)s ».", number=raw), field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """'+33612345678' → '06 12 34 56 78'; foreign numbers in international format."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 33:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

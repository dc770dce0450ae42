"""Parsers for the fields of the billing system's CSV exports. Each raises ValueError with a
French message naming what is wrong; the importer adds the file and line."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal, InvalidOperation

from app.errors import BusinessError
from app.parties.phones import normalise_phone

Parser = Callable[[str], object]

MAX_AMOUNT = Decimal("10000000000")  # NUMERIC(12,2)
MAX_INTEGER = 2**31 - 1  # INTEGER columns


def text(max_length: int, *, required: bool = False) -> Parser:
    def parse(value: str):
        value = value.strip()
        if not value:
            if required:
                raise ValueError("valeur obligatoire manquante")
            return None
        if len(value) > max_length:
            raise ValueError(f"plus de {max_length} caractères")
        return value

    return parse


def choice(options: Iterable[str], *, required: bool = True, default: str | None = None) -> Parser:
    options = tuple(options)

    def parse(value: str):
        value = value.strip().lower()
        if not value:
            if default is not None:
                return default
            if required:
                raise ValueError("valeur obligatoire manquante")
            return None
        if value not in options:
            raise ValueError(f"« {value} » n'est pas une valeur permise ({', '.join(options)})")
        return value

    return parse


def iso_date(*, required: bool = True) -> Parser:
    def parse(value: str):
        value = value.strip()
        if not value:
            if required:
                raise ValueError("date obligatoire manquante")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"date invalide « {value} » (format attendu AAAA-MM-JJ)") from None

    return parse


def amount(*, required: bool = True) -> Parser:
    """Euros with at most two decimals, '.' or ',' as separator, never negative."""

    def parse(value: str):
        value = value.strip().replace(" ", "").replace(",", ".")
        if not value:
            if required:
                raise ValueError("montant obligatoire manquant")
            return Decimal("0.00")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"montant invalide « {value} »") from None
        if not number.is_finite():
            raise ValueError(f"montant invalide « {value} »")
        if number < 0:
            raise ValueError(f"montant négatif « {value} »")
        if number >= MAX_AMOUNT:
            raise ValueError(f"montant hors limites « {value} »")
        if number != number.quantize(Decimal("0.01")):
            raise ValueError(f"montant avec plus de deux décimales « {value} »")
        return number.quantize(Decimal("0.01"))

    return parse


def integer(*, minimum: int = 0) -> Parser:
    def parse(value: str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"nombre entier attendu, reçu « {value} »")
        number = int(value)
        if number < minimum:
            raise ValueError(f"nombre inférieur à {minimum}")
        if number > MAX_INTEGER:
            raise ValueError(f"nombre trop grand « {value} »")
        return number

    return parse


def boolean(*, default: bool) -> Parser:
    def parse(value: str):
        value = value.strip().lower()
        if not value:
            return default
        if value in {"1", "oui", "o", "true", "vrai", "yes", "y"}:
            return True
        if value in {"0", "non", "n", "false", "faux", "no"}:
            return False
        raise ValueError(f"oui/non attendu, reçu « {value} »")

    return parse


def insee(*, required: bool = False) -> Parser:
    def parse(value: str):
        value = value.strip().upper()
        if not value:
            if required:
                raise ValueError("code INSEE obligatoire manquant")
            return None
        if not re.fullmatch(r"[0-9][0-9AB][0-9]{3}", value):
            raise ValueError(f"code INSEE invalide « {value} »")
        return value

    return parse


def postal_code(value: str):
    value = value.strip()
    if value and not re.fullmatch(r"\d{5}", value):
        raise ValueError(f"code postal invalide « {value} »")
    return value or None


def phones(value: str) -> list[str]:
    """Numbers separated by '|', in any usual format, returned in E.164."""
    result = []
    for raw in value.split("|"):
        if raw.strip():
            try:
                number = normalise_phone(raw)
            except BusinessError as exc:
                raise ValueError(exc.message[0].lower() + exc.message[1:].rstrip(".")) from None
            if number not in result:
                result.append(number)
    return result


def emails(value: str) -> list[str]:
    result = []
    for raw in value.split("|"):
        address = raw.strip().lower()
        if address:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address) or len(address) > 254:
                raise ValueError(f"adresse e-mail invalide « {raw.strip()} »")
            if address not in result:
                result.append(address)
    return result

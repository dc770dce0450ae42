"""Password hashing with argon2id at the OWASP minimum (19 MiB, 2 iterations, 1 lane)."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

MIN_LENGTH = 12

# Verified against when the login is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("guichet-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when password matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_strength(password: str, *, login: str):
    """A message (translated when shown) saying why the password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return _l("Le mot de passe doit contenir au moins %(n)s caractères.", n=MIN_LENGTH)
    if login and login.lower() in password.lower():
        return _l("Le mot de passe ne doit pas contenir l'identifiant.")
    return None

"""Business errors raised by services and shown to users as clear messages."""
from __future__ import annotations


class BusinessError(Exception):
    """A request refused by a business rule; the message is meant for the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

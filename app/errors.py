"""Business errors raised by services and shown to users as clear messages."""
from __future__ import annotations


class BusinessError(Exception):
    """A request refused by a business rule; the message is meant for the user."""

    def __init__(self, message, *, field: str | None = None) -> None:
        # message may be a lazy translation: it is rendered in the language of whoever reads it.
        super().__init__(str(message))
        self._message = message
        self.field = field

    @property
    def message(self) -> str:
        return str(self._message)

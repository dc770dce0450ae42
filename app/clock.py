"""The one source of "now" for business rules, so tests can move time instead of sleeping."""
from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)

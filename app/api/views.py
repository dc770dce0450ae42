"""The HTTP API for other systems (/api/v1), authenticated by API tokens."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

"""The party page (a simple one until the 360° view)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("parties", __name__, url_prefix="/clients")

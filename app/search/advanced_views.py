"""The advanced search: many criteria, customers or contracts, paginated, sortable, CSV export."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("advanced_search", __name__, url_prefix="/recherche/avancee")

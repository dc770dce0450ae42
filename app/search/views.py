"""The quick search (the box in the top bar) and caller identification."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("search", __name__)

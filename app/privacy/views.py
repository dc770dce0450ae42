"""The data protection officer's page for one party: what an access request's export holds, and
the export itself as a printable HTML page or as JSON.

Access is checked in the query: the party is read with ``party.privacy`` as the permission, so an
agent lacking it gets 403 and a party outside the agent's territories reads as missing (404).
Each download is traced (audit action ``privacy_export``, the format in its data) and committed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, abort, render_template
from flask_babel import format_date, format_datetime
from flask_login import current_user

from app.audit import service as audit
from app.db import session
from app.parties.models import Party
from app.privacy import access
from app.security.scope import get_scoped
from app.web import CONTENT_SECURITY_POLICY, money, require_permission

PRIVACY = "party.privacy"

bp = Blueprint("privacy", __name__, url_prefix="/interlocuteurs/<int:party_id>/donnees-personnelles")

# The downloaded page is self-contained: its stylesheet travels inside it (screen and print).
EXPORT_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; color: #111; margin: 2em auto;
       max-width: 60em; line-height: 1.35; }
h1 { font-size: 18pt; margin-bottom: .2em; }
h2 { font-size: 14pt; border-bottom: 2px solid #333; margin-top: 1.6em; }
h3 { font-size: 12pt; margin: 1em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
th, td { border: 1px solid #bbb; padding: .2em .4em; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: 600; }
table.record > tbody > tr > th { width: 14em; }
table.record table.record > tbody > tr > th { width: 9em; }
td ul { margin: 0; padding-left: 1.1em; }
.item { margin: .6em 0 1em; }
.empty { color: #555; font-style: italic; }
.intro { color: #333; }
.toc li { margin: .1em 0; }
pre { white-space: pre-wrap; font-family: inherit; margin: 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  .toc { display: none; }
  h2 { page-break-after: avoid; break-after: avoid; }
  tr, .item { page-break-inside: avoid; break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
@page { size: A4; margin: 15mm; }
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(EXPORT_CSS.encode()).digest()).decode()
# The application's policy, with the export's own stylesheet allowed (when the page is opened inline).
EXPORT_CSP = CONTENT_SECURITY_POLICY.replace("style-src 'self'", f"style-src 'self' 'sha256-{_CSS_HASH}'")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
MONEY_FIELDS = frozenset({"amount", "amount_paid", "balance"})


def _party_or_404(party_id: int) -> Party:
    """The party if the agent may handle its privacy requests and it lies in the agent's territories."""
    party = get_scoped(Party, party_id, agent=current_user, permission=PRIVACY)
    if party is None:
        abort(404)
    return party


def shown(v, key: str | None = None) -> str:
    """A scalar of the export as the page shows it: dates in French, amounts in euros."""
    if v is None or v == "":
        return "—"
    if isinstance(v, bool):
        return "Oui" if v else "Non"
    if isinstance(v, str):
        if key in MONEY_FIELDS:
            try:
                return money(Decimal(v))
            except InvalidOperation:
                return v
        if _DATE_RE.match(v):
            try:
                return format_date(date.fromisoformat(v), "short")
            except ValueError:
                return v
        if _DATETIME_RE.match(v):
            try:
                return format_datetime(datetime.fromisoformat(v), "short")
            except ValueError:
                return v
    return str(v)


def field_label(key) -> str:
    return access.FIELD_LABELS.get(str(key), str(key))


def tabular(items: list) -> bool:
    """Whether a list of records reads as one table: same fields, none holding records of its own."""
    keys = set(items[0]) if items else set()
    for item in items:
        if not isinstance(item, dict) or set(item) != keys:
            return False
        for v in item.values():
            if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)):
                return False
    return True


def _filename(party: Party, extension: str) -> str:
    return f"donnees-personnelles-{party.number}.{extension}"


def _exported(party: Party, fmt: str) -> None:
    audit.record("privacy_export", obj=party, data={"format": fmt})
    session.commit()


@bp.route("/")
@require_permission(PRIVACY)
def summary(party_id: int):
    party = _party_or_404(party_id)
    export = access.collect(party.id)
    return render_template("privacy/summary.html", party=party, export=export, counts=access.counts(export))


@bp.route("/export.html")
@require_permission(PRIVACY)
def export_html(party_id: int):
    party = _party_or_404(party_id)
    export = access.collect(party.id)
    page = render_template("privacy/export.html", party=party, export=export, counts=access.counts(export),
                           css=EXPORT_CSS, shown=shown, field_label=field_label,
                           tabular=tabular)
    _exported(party, "html")
    response = Response(page, mimetype="text/html")
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(party, "html")}"'
    response.headers["Content-Security-Policy"] = EXPORT_CSP
    return response


@bp.route("/export.json")
@require_permission(PRIVACY)
def export_json(party_id: int):
    party = _party_or_404(party_id)
    export = access.collect(party.id)
    body = json.dumps(export, ensure_ascii=False, indent=2)
    _exported(party, "json")
    response = Response(body.encode("utf-8"), mimetype="application/json")
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(party, "json")}"'
    return response

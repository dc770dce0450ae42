"""The advanced search: many criteria, customers or contracts, paginated, sortable, CSV export.

Everything is a GET whose query string holds the criteria, the sort and the page, so a search
can be bookmarked, sent to a colleague (who sees it within their own scope) or reloaded.
"""
from __future__ import annotations

from math import ceil

from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.audit import service as audit
from app.search import advanced
from app.web import require_permission

bp = Blueprint("advanced_search", __name__, url_prefix="/recherche/avancee")


def _args():
    """The query string; the quick search hands its text over as q, which becomes the name."""
    args = request.args
    if args.get("q") and not args.get("name"):
        args = args.copy()
        args["name"] = args["q"][:advanced.MAX_TEXT]
    return args


@bp.route("/")
@require_permission("party.read")
def search():
    args = _args()
    form, criteria = advanced.parse(args, agent=current_user)
    mode = criteria.mode if criteria else args.get("mode") if args.get("mode") in advanced.MODES else advanced.PARTIES
    sort, descending = advanced.sort_from(args, mode)
    result = None
    if criteria is not None and not criteria.is_empty():
        result = advanced.search(agent=current_user, criteria=criteria, sort=sort, descending=descending,
                                 page=advanced.page_from(args.get("page")))
    link_args = criteria.as_args() if criteria else {}

    def sort_url(key: str) -> str:
        flip = key == sort and not descending
        return url_for(".search", **link_args, sort=key, dir="desc" if flip else None)

    def page_url(page: int) -> str:
        return url_for(".search", **link_args, sort=sort, dir="desc" if descending else None, page=page)

    export_url = url_for(".export", **link_args, sort=sort, dir="desc" if descending else None)
    pages = ceil(result.count / advanced.PAGE_SIZE) if result and not result.more_than_cap else None
    # A refused form still answers 200: a search page shows its errors, nothing was written.
    return render_template("search/advanced.html", form=form, criteria=criteria, result=result, mode=mode,
                           pages=pages, sort_url=sort_url, page_url=page_url, export_url=export_url,
                           submitted=bool(request.args), count_cap=advanced.COUNT_CAP, max_page=advanced.MAX_PAGE)


@bp.route("/export.csv")
@require_permission("party.export")
def export():
    """The search's rows, all pages, as CSV.

    The audit entry (who exported which criteria, how many rows) is written here, in the
    request's transaction, which web.after_request commits before the first byte of the body
    is produced: the trace exists even if the download is interrupted. The number of rows is
    counted first (stopping at EXPORT_CAP + 1), so the entry says what the file holds."""
    args = _args()
    form, criteria = advanced.parse(args, agent=current_user)
    if criteria is None or criteria.is_empty():
        flash(_("Choisissez des critères valides avant d'exporter."), "error")
        return redirect(url_for(".search", **args.to_dict()))
    sort, descending = advanced.sort_from(args, criteria.mode)
    rows = advanced.export_count(agent=current_user, criteria=criteria)
    audit.record("export", object_type="contract" if criteria.mode == advanced.CONTRACTS else "party", data={
        "format": "csv", "mode": criteria.mode, "criteria": criteria.as_args(),
        "sort": f"{'-' if descending else ''}{sort}", "rows": min(rows, advanced.EXPORT_CAP),
        "truncated": rows > advanced.EXPORT_CAP})
    what = _("contrats") if criteria.mode == advanced.CONTRACTS else _("clients")
    filename = f"recherche-{what}-{clock.now():%Y%m%d-%H%M}.csv"
    body = advanced.export_csv(agent=current_user._get_current_object(), criteria=criteria, sort=sort,
                               descending=descending)
    response = Response(stream_with_context(body), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""The request boundary: authentication, audit context, one commit per request, headers, errors."""
from __future__ import annotations

import re
import uuid
from functools import wraps

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask_babel import format_currency, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from app import clock
from app.audit.context import AuditContext, set_context
from app.db import session as db_session
from app.extensions import csrf, login_manager

PUBLIC_ENDPOINTS = {"static", "auth.login", "core.health"}
# URL prefix → blueprint, for blueprints whose requests carry a token instead of the session.
TOKEN_AUTHENTICATED: dict[str, str] = {}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

ERROR_MESSAGES = {
    400: _l("La requête est invalide."),
    403: _l("Vous n'avez pas l'habilitation nécessaire pour cette page."),
    404: _l("Cette page n'existe pas, ou elle est hors de votre périmètre."),
    405: _l("Cette action n'est pas permise ici."),
    413: _l("L'envoi est trop volumineux."),
    429: _l("Trop de tentatives. Patientez un instant avant de réessayer."),
    500: _l("Une erreur interne est survenue. Elle a été enregistrée ; réessayez ou contactez le support."),
}


def require_permission(permission: str):
    """View decorator: 403 unless the logged-in agent holds permission."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated or not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def token_authenticated(bp: Blueprint) -> Blueprint:
    """Mark a blueprint that authenticates every request itself, with a token in a header.

    The session login gate lets its requests through: they carry no session cookie, and a
    redirect to the login page would mean nothing to another system. A wrong path or method under
    its url_prefix, which matches no view, gets its own 404 or 405 rather than a misleading
    "authentication required". CSRF does not apply: a token that the browser never sends by
    itself cannot be abused by a forged cross-site request. The blueprint must refuse, in its own
    before_request, any request without a valid token.
    """
    TOKEN_AUTHENTICATED[bp.url_prefix.rstrip("/") + "/"] = bp.name
    csrf.exempt(bp)
    return bp


def _token_authenticated_request() -> bool:
    for prefix, name in TOKEN_AUTHENTICATED.items():
        if (request.path + "/").startswith(prefix):  # "/api/v1" too, not only "/api/v1/…"
            return request.url_rule is None or name in request.blueprints
    return False


# The catalogue is "en"; dates and numbers follow British usage (day before month).
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def select_locale() -> str:
    if not has_request_context():  # command line, Celery task: the default language
        return "fr_FR"
    if current_user and current_user.is_authenticated:
        language = current_user.language
    else:
        language = request.accept_languages.best_match(["fr", "en"]) or "fr"
    return BABEL_LOCALES.get(language, "fr_FR")


def money(amount) -> str:
    """An amount in euros as the agent reads it: "1 234,56 €" in French (Babel's CLDR format)."""
    if amount is None:
        return "—"
    return format_currency(amount, "EUR")


def select_timezone() -> str:
    from flask import current_app

    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


@login_manager.user_loader
def _load_agent(agent_id: str):
    from app.security.sessions import resume_session

    try:
        return resume_session(session_id=cookie_session.get("sid"), agent_id=int(agent_id))
    except ValueError:
        return None


def _wants_json() -> bool:
    return (request.path + "/").startswith("/api/") or request.accept_mimetypes.best == "application/json"


def init_request_id(app: Flask) -> None:
    """Give every request its id first, before CSRF or any other check may refuse it."""

    @app.before_request
    def _request_id():
        # A request id from the client is trusted only from our own reverse proxy.
        header_id = request.headers.get("X-Request-ID", "") if app.config["TRUSTED_PROXY_COUNT"] else ""
        g.request_id = header_id if REQUEST_ID_RE.match(header_id) else uuid.uuid4().hex
        set_context(AuditContext(request_id=g.request_id, client_addr=request.remote_addr))


MAX_ID = 2_147_483_647  # the largest primary key of an INTEGER column on PostgreSQL


def db_id(text) -> int:
    """An id as typed in a URL or a form: ASCII digits within the column's range, else ValueError
    (werkzeug's ``request.values.get(..., type=db_id)`` then gives the default). ``"²".isdigit()``
    is true but ``int("²")`` fails, and an id past the column's range fails in the database."""
    text = str(text).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ID:
        raise ValueError(f"not an id: {text[:20]!r}")
    return int(text)


def int_or_none(value) -> int | None:
    """A form's hidden number (a version, an id) as an int, or None when absent or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def show_error(form, exc) -> None:
    """A service's refusal (BusinessError) next to its form field, or flashed when it names none."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")


class IdConverter(IntegerConverter):
    """``<int:…>`` in routes: ids within the column's range; a larger one is a missing page (404),
    not a database error."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's signature)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Connectez-vous pour accéder à Guichet.")
    login_manager.session_protection = None  # our server-side sessions do this job
    app.jinja_env.globals["now_utc"] = lambda: clock.now()
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["money"] = money

    @app.before_request
    def _open_request():
        if request.endpoint in PUBLIC_ENDPOINTS or _token_authenticated_request():
            return None
        if not current_user.is_authenticated:
            if request.headers.get("HX-Request"):
                response = app.response_class(status=401)
                response.headers["HX-Redirect"] = url_for("auth.login")
                return response
            if _wants_json():
                return jsonify(error="authentication required"), 401
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=None if target == "/" else target))
        set_context(
            AuditContext(
                actor_id=current_user.id,
                actor_label=current_user.login,
                request_id=g.request_id,
                client_addr=request.remote_addr,
            )
        )
        return None

    @app.after_request
    def _close_request(response):
        # One commit per request, only when the request succeeded; anything else rolls back.
        if response.status_code < 400:
            db_session.commit()
        else:
            db_session.rollback()
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def _forget_actor(_exc):
        # Threads serve many requests: no request may inherit the previous one's actor.
        set_context(AuditContext(actor_label="system"))

    def _error_page(code: int, message=None):
        if _wants_json():  # the API's error shape (app/api/errors.py): a message, and no field at fault
            return jsonify(error=str(message or ERROR_MESSAGES.get(code, "")), fields={}), code
        return render_template("errors/error.html", code=code, message=message or ERROR_MESSAGES.get(code)), code

    @app.errorhandler(CSRFError)
    def _csrf_error(exc):
        return _error_page(400, _("Le formulaire a expiré ou n'est pas authentique. Rechargez la page et recommencez."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _error_page(exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected_error(exc: Exception):
        db_session.rollback()
        app.logger.exception("unhandled error (request %s)", g.get("request_id"))
        return _error_page(500)


FORMULA_STARTS = ("=", "+", "-", "@")


def csv_cell(value) -> str:
    """A CSV cell for French spreadsheets: a date as dd/mm/yyyy, and text that a spreadsheet would
    run as a formula quoted with an apostrophe, including after leading blanks or line breaks
    (spreadsheets skip them before an "=")."""
    from datetime import date

    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return f"'{text}" if text.lstrip(" \t\r\n")[:1] in FORMULA_STARTS or text[:1] in ("\t", "\r") else text


"""Login, logout and the agent's own preferences."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from app.errors import BusinessError
from app.extensions import limiter
from app.security import service, sessions
from app.security.forms import LanguageForm, LoginForm

bp = Blueprint("auth", __name__)

# One message for every refusal, so that it reveals nothing about the account.
LOGIN_REFUSED = _l("Identification impossible : identifiant ou mot de passe incorrect.")


def _safe_next(target: str | None) -> str:
    """target if it is a path on this site, else the home page (no open redirect)."""
    if target and target.isprintable() and not any(c.isspace() or c == "\\" for c in target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/") and not target.startswith("//"):
            return target
    return url_for("core.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if form.validate_on_submit():
        agent = sessions.authenticate(login=form.login.data, password=form.password.data)
        if agent is not None:
            session.clear()  # a new session at every login: nothing survives from before
            agent_session = sessions.open_session(
                agent=agent, client_addr=request.remote_addr, user_agent=request.user_agent.string
            )
            session["sid"] = agent_session.id
            session.permanent = True
            login_user(agent)
            return redirect(_safe_next(request.args.get("next")))
        flash(str(LOGIN_REFUSED), "error")
    return render_template("security/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    sessions.end_session(session_id=session.get("sid"))
    logout_user()
    session.clear()
    flash(_("Vous êtes déconnecté."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/me", methods=["GET", "POST"])
def preferences():
    form = LanguageForm(language=current_user.language)
    if form.validate_on_submit():
        try:
            service.set_language(agent=current_user, language=form.language.data)
        except BusinessError as exc:
            form.language.errors.append(exc.message)
        else:
            return redirect(url_for("auth.preferences"))
    return render_template("security/preferences.html", form=form)

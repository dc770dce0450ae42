"""Guichet: the customer-relationship module for water and energy utilities."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config as config_module


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration, extensions, request boundary, blueprints."""
    app = Flask(__name__)
    from app.web import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any route is declared
    app.config.update(config_module.from_env())
    if test_config:
        app.config.update(test_config)
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    from app import web
    from app.db import db
    from app.extensions import babel, csrf, limiter, login_manager, migrate

    web.init_request_id(app)  # before CSRFProtect's hook, so that even its refusals carry an id
    db.init_app(app)
    migrate.init_app(app, db, directory=str(config_module.PROJECT_ROOT / "migrations"), compare_type=True,
                     render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=web.select_locale, timezone_selector=web.select_timezone)
    login_manager.init_app(app)
    web.init_app(app)

    from app import labels
    from app.audit import display as audit_display

    audit_display.init_app(app)
    labels.init_app(app)

    from app import models  # noqa: F401  (every table on the metadata)
    from app.api.admin_views import bp as api_admin_bp
    from app.api.views import bp as api_bp
    from app.contacts import history  # noqa: F401  (contacts and dossiers in the customer's history)
    from app.contacts.views import bp as contacts_bp
    from app.core.views import bp as core_bp
    from app.documents.views import admin_bp as document_templates_bp
    from app.documents.views import bp as documents_bp
    from app.dossiers.views import bp as dossiers_bp
    from app.dunning.pages import bp as dunning_bp
    from app.parties.edit_views import bp as party_edit_bp
    from app.parties.prospect_views import bp as prospects_bp
    from app.parties.views import bp as parties_bp
    from app.privacy.erasure_views import bp as privacy_erasure_bp
    from app.privacy.views import bp as privacy_bp
    from app.processes.design_views import bp as design_bp
    from app.processes.views import bp as processes_bp
    from app.referentials.access_views import bp as access_bp
    from app.referentials.views import bp as referentials_bp
    from app.search import index  # noqa: F401  (keeps party_search in step with ORM writes)
    from app.search.advanced_views import bp as advanced_bp
    from app.search.views import bp as search_bp
    from app.security.admin_views import bp as admin_bp
    from app.security.views import bp as auth_bp
    from app.supervision.views import bp as supervision_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(parties_bp)
    app.register_blueprint(party_edit_bp)
    app.register_blueprint(prospects_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(advanced_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_admin_bp)
    app.register_blueprint(contacts_bp)
    app.register_blueprint(dossiers_bp)
    app.register_blueprint(processes_bp)
    app.register_blueprint(referentials_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(document_templates_bp)
    app.register_blueprint(dunning_bp)
    app.register_blueprint(design_bp)
    app.register_blueprint(access_bp)
    app.register_blueprint(supervision_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(privacy_erasure_bp)  # erasure on request (GDPR)

    from app.documents.service import run_operation as generate_document
    from app.processes import engine

    engine.register_operation("generate_document", generate_document)
    from app.processes import record_steps

    record_steps.register()

    from app.dunning import steps as dunning_steps

    dunning_steps.init_app()  # the relaunch's levels, closing, payment plans, the cut-off guard

    from app import mails

    mails.init_app(app)  # the dossier's mail form, the send_mail operation

    from app import cli

    cli.init_app(app)
    from app.privacy.cli import privacy_cli

    app.cli.add_command(privacy_cli)  # flask privacy retention

    from workers.celery_app import celery_init_app

    celery_init_app(app)
    return app

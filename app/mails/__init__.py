"""Mails: the outbox written with the step that sends them, delivered by a Celery task over SMTP."""
from __future__ import annotations


def init_app(app) -> None:
    """The dossier page's mail form and the ``send_mail`` service operation."""
    from app.mails.service import run_operation
    from app.mails.views import bp
    from app.processes import engine

    app.register_blueprint(bp)
    engine.register_operation("send_mail", run_operation)

"""Entry point of the ``celery`` command: builds the Flask app and exposes its Celery app."""
from app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]

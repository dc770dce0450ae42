"""The home page and the health check."""
from flask import Blueprint, jsonify, render_template
from sqlalchemy import text

from app.db import session

bp = Blueprint("core", __name__)


@bp.route("/")
def home():
    return render_template("core/home.html")


@bp.route("/health")
def health():
    session.execute(text("SELECT 1"))
    return jsonify(status="ok")

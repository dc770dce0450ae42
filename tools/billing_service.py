"""A stand-in for the billing system's affaire API, for the demo and the tests.

It implements the contract of docs/integration.md and nothing more: affaires created once per
idempotency key, their status changes recorded in order, read back by number. State is kept in a
SQLite file (``--db``), so that stopping the service and starting it again — the billing system
being down for a while — loses nothing, as a real one would not.

Run: ``python -m tools.billing_service --port 5055 --db instance/billing-standin.sqlite
[--token SECRET]`` (or ``BILLING_STANDIN_TOKEN``: then every call needs ``Authorization: Bearer``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime

from flask import Flask, g, jsonify, request

STATUSES = ("open", "in_progress", "suspended", "closed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS affaire (number TEXT PRIMARY KEY, dossier_reference TEXT UNIQUE, body TEXT,
                                    status TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS status_change (id INTEGER PRIMARY KEY, number TEXT, status TEXT, changed_at TEXT,
                                          received_at TEXT);
CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, request_hash TEXT, status_code INTEGER,
                                        response TEXT);
"""


def create_app(database: str, token: str | None = None) -> Flask:
    app = Flask("billing_standin")
    lock = threading.Lock()  # one writer at a time: the stand-in serves tests and a demo, not load

    def db() -> sqlite3.Connection:
        if "db" not in g:
            g.db = sqlite3.connect(database, timeout=30, isolation_level=None)
            g.db.row_factory = sqlite3.Row
        return g.db

    with sqlite3.connect(database) as connection:
        connection.executescript(SCHEMA)

    @app.teardown_appcontext
    def _close(_exc):
        connection = g.pop("db", None)
        if connection is not None:
            connection.close()

    @app.before_request
    def _authenticate():
        if token and request.headers.get("Authorization") != f"Bearer {token}":
            return jsonify(error="unauthorized"), 401
        return None

    def errors(fields: dict[str, str]):
        return jsonify(error="invalid request", fields=fields), 422

    def idempotent(handler):
        """Run handler(body) once per Idempotency-Key: the same key and body again get the same
        answer; the same key with another body is refused."""
        key = request.headers.get("Idempotency-Key", "")
        if not 0 < len(key) <= 200:
            return errors({"Idempotency-Key": "required, 1 to 200 characters"})
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return errors({"": "a JSON object is expected"})
        digest = hashlib.sha256((request.path + json.dumps(body, sort_keys=True)).encode()).hexdigest()
        with lock:
            connection = db()
            connection.execute("BEGIN IMMEDIATE")
            try:
                seen = connection.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()
                if seen is not None:
                    connection.execute("ROLLBACK")
                    if seen["request_hash"] != digest:
                        return errors({"Idempotency-Key": "already used for another request"})
                    response = app.response_class(seen["response"], status=seen["status_code"],
                                                  mimetype="application/json")
                    response.headers["Idempotent-Replayed"] = "true"
                    return response
                payload, status = handler(connection, body)
                if status < 400:
                    connection.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?)",
                                       (key, digest, status, json.dumps(payload)))
                connection.execute("COMMIT" if status < 400 else "ROLLBACK")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return jsonify(payload), status

    def _text(body: dict, name: str, fields: dict, *, required: bool = True, limit: int = 200):
        value = body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            fields[name] = f"a text of 1 to {limit} characters"
        return value

    @app.post("/api/affaires")
    def create_affaire():
        def handler(connection, body):
            fields: dict[str, str] = {}
            reference = _text(body, "dossier_reference", fields, limit=40)
            _text(body, "classification", fields, limit=40)
            _text(body, "subject", fields)
            if body.get("status") not in STATUSES:
                fields["status"] = f"one of {', '.join(STATUSES)}"
            for name in ("customers", "contracts"):
                value = body.get(name, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    fields[name] = "a list of numbers"
            if fields:
                return {"error": "invalid request", "fields": fields}, 422
            if connection.execute("SELECT 1 FROM affaire WHERE dossier_reference = ?", (reference,)).fetchone():
                return {"error": f"an affaire already mirrors {reference}"}, 409
            count = connection.execute("SELECT count(*) FROM affaire").fetchone()[0]
            number = f"AFF-{count + 1:06d}"
            connection.execute("INSERT INTO affaire VALUES (?, ?, ?, ?, ?)",
                               (number, reference, json.dumps(body), body["status"], datetime.now().isoformat()))
            return {"affaire": number, "status": body["status"]}, 201
        return idempotent(handler)

    @app.post("/api/affaires/<number>/status")
    def change_status(number: str):
        def handler(connection, body):
            if connection.execute("SELECT 1 FROM affaire WHERE number = ?", (number,)).fetchone() is None:
                return {"error": f"unknown affaire {number}"}, 404
            if body.get("status") not in STATUSES:
                return {"error": "invalid request", "fields": {"status": f"one of {', '.join(STATUSES)}"}}, 422
            connection.execute("INSERT INTO status_change (number, status, changed_at, received_at) "
                               "VALUES (?, ?, ?, ?)", (number, body["status"], str(body.get("changed_at", "")),
                                                       datetime.now().isoformat()))
            connection.execute("UPDATE affaire SET status = ? WHERE number = ?", (body["status"], number))
            return {"affaire": number, "status": body["status"]}, 200
        return idempotent(handler)

    @app.get("/api/affaires/<number>")
    def read_affaire(number: str):
        row = db().execute("SELECT * FROM affaire WHERE number = ?", (number,)).fetchone()
        if row is None:
            return jsonify(error=f"unknown affaire {number}"), 404
        history = [r["status"] for r in db().execute(
            "SELECT status FROM status_change WHERE number = ? ORDER BY id", (number,))]
        return jsonify({**json.loads(row["body"]), "affaire": number, "status": row["status"], "history": history})

    @app.get("/api/affaires")
    def list_affaires():
        rows = db().execute("SELECT number, dossier_reference, status FROM affaire ORDER BY number").fetchall()
        return jsonify(affaires=[dict(r) for r in rows])

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in billing system (affaire API).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BILLING_STANDIN_PORT", "5055")))
    parser.add_argument("--db", default=os.environ.get("BILLING_STANDIN_DB", "instance/billing-standin.sqlite"))
    parser.add_argument("--token", default=os.environ.get("BILLING_STANDIN_TOKEN"))
    args = parser.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, create_app(args.db, args.token), threaded=True)


if __name__ == "__main__":
    main()

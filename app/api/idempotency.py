"""Idempotency keys: a creation retried with the same ``Idempotency-Key`` is answered, not redone.

A client that lost the answer to a POST (a timeout, a dropped connection) sends it again with
the same key. Per token, the first successful answer is stored with the key, in the same
transaction as what it created; the same key and the same body then get that stored answer
again (same status and body, with ``Idempotent-Replayed: true``) and nothing is created. The
same key with another body is refused (422): a key names one request. Refusals (4xx) are not
stored: the client corrects its request and may reuse the key.

Two copies of one request arriving together both pass the lookup; the unique constraint on
(token, key) lets only one commit, and the other rolls back its work and replays the winner's
answer.

Keys are kept KEY_TTL (24 hours): a lookup ignores and deletes an older one, and storing a key
deletes the token's expired ones, so the table holds about one day of each token's creations.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import wraps

from flask import g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.api.errors import ApiError, ValidationError
from app.api.models import ApiIdempotencyKey
from app.db import session

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX = 200  # the column's length
KEY_RE = re.compile(rf"[\x21-\x7e]{{1,{KEY_MAX}}}")  # visible ASCII: a UUID, a ULID, "relance-2026-05-12-42"
KEY_TTL = timedelta(hours=24)


def _request_hash() -> str:
    """The request as a key names it: method, path and body (JSON compared by content, not by layout)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    text = f"{request.method}\n{request.path}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stored(token_id: int, key: str) -> ApiIdempotencyKey | None:
    row = session.execute(select(ApiIdempotencyKey).where(
        ApiIdempotencyKey.token_id == token_id, ApiIdempotencyKey.key == key)).scalar_one_or_none()
    if row is not None and row.created_at <= clock.now() - KEY_TTL:
        session.delete(row)
        session.flush()
        return None
    return row


def _replay(row: ApiIdempotencyKey, request_hash: str):
    if row.request_hash != request_hash:
        raise ApiError(422, _("Cette clé d'idempotence a déjà servi pour une autre requête de ce jeton : "
                              "utilisez une nouvelle clé pour une nouvelle demande."),
                       fields={HEADER: _("Clé déjà utilisée avec un autre contenu.")})
    response = jsonify(row.response)
    response.headers[REPLAYED_HEADER] = "true"
    return response, row.status_code


def idempotent(view):
    """View decorator: honour an Idempotency-Key header. The view answers through respond()."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not KEY_RE.fullmatch(key):
            raise ValidationError({HEADER: _("De 1 à %(max)d caractères ASCII visibles (un UUID par exemple).",
                                             max=KEY_MAX)})
        request_hash = _request_hash()
        row = _stored(g.api_token.id, key)
        if row is not None:
            answer = _replay(row, request_hash)
            session.commit()  # the token's last use
            return answer
        g.idempotency = (key, request_hash)
        return view(*args, **kwargs)

    return wrapped


def _conflict() -> ApiError:
    return ApiError(409, _("Une autre requête a écrit les mêmes données au même moment : rien n'a été écrit ; "
                           "relisez puis renvoyez la requête."))


def respond(payload: dict, status: int):
    """Commit the view's work, with its idempotency key if the request carried one, and answer."""
    pending = g.pop("idempotency", None)
    if pending is None:
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise _conflict() from None
        return jsonify(payload), status
    key, request_hash = pending
    token_id = g.api_token.id
    session.execute(delete(ApiIdempotencyKey).where(ApiIdempotencyKey.token_id == token_id,
                                                    ApiIdempotencyKey.created_at <= clock.now() - KEY_TTL))
    session.add(ApiIdempotencyKey(token_id=token_id, key=key, request_hash=request_hash, status_code=status,
                                  response=payload, created_at=clock.now()))
    try:
        session.commit()
    except IntegrityError:
        # The same key committed meanwhile by a concurrent copy of this request: undo ours, replay its.
        session.rollback()
        row = _stored(token_id, key)
        if row is None:  # not the key: the data itself met a concurrent write (a number taken meanwhile)
            raise _conflict() from None
        return _replay(row, request_hash)
    return jsonify(payload), status

"""The one error shape of /api/v1: ``{"error": message, "fields": {"field.path": message, …}}``.

``fields`` names each field at fault by its path in the request (``parties[0].role``,
``invoices[2].amount``, a query parameter's name); it is empty when no field is.
"""
from __future__ import annotations

from flask import jsonify
from flask_babel import gettext as _


class ApiError(Exception):
    """A refusal answered in the API's error shape."""

    def __init__(self, status: int, message: str, *, fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


class ValidationError(ApiError):
    """422: the request is well-formed JSON, but fields are missing or wrong."""

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        super().__init__(422, message or _("Requête invalide : %(count)d champ(s) en erreur.", count=len(fields)),
                         fields=fields)


def error_response(status: int, message: str, fields: dict[str, str] | None = None, **headers):
    response = jsonify(error=message, fields=fields or {})
    response.headers.update(headers)
    return response, status

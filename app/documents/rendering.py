"""Rendering a .docx template with docxtpl, in a sandboxed Jinja environment.

docxtpl's own environment is a plain ``jinja2.Environment``: a template holding
``{{ cycler.__init__.__globals__.os.popen('id').read() }}`` would run the command. Here the
environment is a ``SandboxedEnvironment`` (Jinja2 >= 3.1.6, which closes two known escapes) with no
globals at all, strict about undefined names, and escaping values for the document's XML. The
context is a plain dict of plain values (built in one place by the caller), never ORM objects.

``render`` turns template bytes and a context into document bytes; ``check`` renders a template
against sample data and says what is wrong with it: a field the context does not have, an attempt
to reach Python internals, broken template syntax, or a file that is not a .docx.
"""
from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager

from docxtpl import DocxTemplate
from flask_babel import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_TEMPLATE_BYTES = 5_000_000


class DocumentError(ValueError):
    """A template that cannot be rendered: the message says why, for the person who uploaded it."""


MAX_VALUE_CHARS = 100_000  # a text a template computes ("x" * n)
MAX_NUMBER = 10 ** 15  # a number it computes (10 ** n)


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with arithmetic bounded: "x" * 10**10 or 9 ** 9 ** 9 in a template would
    exhaust the memory or the time of the process rendering it (the check at upload included)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for text, count in ((left, right), (right, left)):
                if isinstance(text, (str, list, tuple)) and isinstance(count, int) \
                        and len(text) * count > MAX_VALUE_CHARS:
                    raise SecurityError("repetition too large")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and abs(result) > MAX_NUMBER:
            raise SecurityError("number too large")
        return result


def environment(*, autoescape: bool = True) -> SandboxedEnvironment:
    """A fresh sandbox: no globals (no cycler, joiner, namespace, range…), undefined names refused,
    arithmetic bounded. Documents escape values for their XML; a plain-text mail does not."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=autoescape)
    env.globals.clear()
    return env


def _template(data: bytes) -> DocxTemplate:
    if len(data) > MAX_TEMPLATE_BYTES:
        raise DocumentError(_("Le modèle dépasse %(mb)d Mo.", mb=MAX_TEMPLATE_BYTES // 1_000_000))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "word/document.xml" not in archive.namelist():
                raise DocumentError(_("Ce fichier n'est pas un document Word (.docx)."))
    except zipfile.BadZipFile:
        raise DocumentError(_("Ce fichier n'est pas un document Word (.docx).")) from None
    return DocxTemplate(io.BytesIO(data))


@contextmanager
def _refusals():
    """Template errors turned into DocumentError with a message for the person who wrote it."""
    try:
        yield
    except SecurityError:
        raise DocumentError(_("Le modèle tente d'accéder à des éléments internes : il est refusé.")) from None
    except UndefinedError as exc:
        raise DocumentError(_("Le modèle utilise un champ inconnu : %(detail)s.", detail=_undefined(exc))) from None
    except TemplateSyntaxError as exc:
        raise DocumentError(_("Le modèle est mal écrit (ligne %(line)s) : %(detail)s.", line=exc.lineno,
                              detail=exc.message)) from None


def render(data: bytes, context: dict) -> bytes:
    """The document: the template's fields filled from context; DocumentError when it cannot be."""
    template = _template(data)
    with _refusals():
        template.render(context, jinja_env=environment(), autoescape=True)
    out = io.BytesIO()
    template.save(out)
    return out.getvalue()


def check(data: bytes, sample: dict) -> None:
    """Refuse, with the reason, a template that would not render with data shaped like sample."""
    render(data, sample)


MAX_TEXT_CHARS = 20_000


def render_text(source: str, context: dict) -> str:
    """A mail's subject or body: plain text, in the same sandbox, with the same refusals."""
    if len(source) > MAX_TEXT_CHARS:
        raise DocumentError(_("Le texte du modèle dépasse %(max)d caractères.", max=MAX_TEXT_CHARS))
    with _refusals():
        return environment(autoescape=False).from_string(source).render(context)


def _undefined(exc: UndefinedError) -> str:
    # Jinja says "'x' is undefined" or "'dict object' has no attribute 'y'": keep the name.
    message = str(exc.message or "")
    if "has no attribute" in message:
        return message.rsplit("attribute", 1)[1].strip()
    return message.replace(" is undefined", "").strip()

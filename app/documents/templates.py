"""Letter and mail templates: the shipped ones in templates_docs/, versions uploaded by
administrators, the newest active version used.

``templates_docs/catalogue.toml`` lists the shipped templates: ``[letters.<code>]`` with a label and
a .docx file, ``[mails.<code>]`` with a label, a subject and a body file. ``flask documents
deploy`` stores each as its next version when its content was never shipped before. While an
administrator's upload is the newest version, a newly shipped one is stored inactive ("held"),
for the administrator to compare and activate. An upload equal to the newest version adds
nothing; an upload equal to an older one is a new version (a revert). Every version is checked
against sample data before it is stored: a field the letter data does not have, or an attempt to
reach Python internals, is refused with the reason. Functions flush; the caller commits.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import func, select

from app import clock
from app.audit.context import current
from app.db import session
from app.documents import context as letter_data
from app.documents.models import DocumentTemplate, StoredFile, TemplateKind
from app.documents.rendering import DocumentError, check, render_text

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CODE_MAX = 60
LABEL_MAX = 200
SUBJECT_MAX = 300


@dataclass(frozen=True)
class Stored:
    template: DocumentTemplate
    created: bool  # False: storing it would add nothing (the existing version is given)
    held: bool = False  # a shipped version stored inactive: an administrator's upload stays in use


def stored_file(filename: str, media_type: str, content: bytes) -> StoredFile:
    row = StoredFile(filename=filename[:200], media_type=media_type, size=len(content),
                     sha256=hashlib.sha256(content).hexdigest(), content=content, created_at=clock.now())
    session.add(row)
    return row


def latest(code: str, kind: str) -> DocumentTemplate | None:
    """The newest active version of the template, or None."""
    stmt = (select(DocumentTemplate)
            .where(DocumentTemplate.code == code, DocumentTemplate.kind == kind, DocumentTemplate.active)
            .order_by(DocumentTemplate.version.desc()).limit(1))
    return session.execute(stmt).scalar_one_or_none()


def catalogue(kind: str | None = None, *, active_only: bool = False) -> list[DocumentTemplate]:
    """The newest version of every template (active or not, or the newest active one), by kind then code."""
    versions_kept = select(DocumentTemplate.code, func.max(DocumentTemplate.version).label("version"))
    if active_only:
        versions_kept = versions_kept.where(DocumentTemplate.active)
    newest = versions_kept.group_by(DocumentTemplate.code).subquery()
    stmt = select(DocumentTemplate).join(newest, (DocumentTemplate.code == newest.c.code)
                                         & (DocumentTemplate.version == newest.c.version))
    if kind is not None:
        stmt = stmt.where(DocumentTemplate.kind == kind)
    return list(session.execute(stmt.order_by(DocumentTemplate.kind, DocumentTemplate.code)).scalars())


def versions(code: str) -> list[DocumentTemplate]:
    stmt = select(DocumentTemplate).where(DocumentTemplate.code == code).order_by(DocumentTemplate.version.desc())
    return list(session.execute(stmt).scalars())


def _check_names(code: str, label: str) -> tuple[str, str]:
    code, label = (code or "").strip(), (label or "").strip()
    if not code or len(code) > CODE_MAX or not all(c.isascii() and (c.isalnum() or c == "_") for c in code):
        raise DocumentError(_("Le code du modèle : lettres, chiffres et « _ », %(max)d caractères au plus.",
                              max=CODE_MAX))
    if not label or len(label) > LABEL_MAX:
        raise DocumentError(_("Le libellé du modèle est obligatoire (%(max)d caractères au plus).", max=LABEL_MAX))
    return code, label


def _unchanged(code: str, kind: str, label: str, digest: str, *, shipped: bool) -> Stored | None:
    """The existing version this content is, when storing it would add nothing:
    - an upload equal to the newest version (a revert to an older content is a new version);
    - a shipped content already shipped once, even if an administrator replaced it since."""
    versions_of_code = select(DocumentTemplate).where(DocumentTemplate.code == code)
    other_kind = session.execute(versions_of_code.where(DocumentTemplate.kind != kind).limit(1)).scalar()
    if other_kind is not None:
        raise DocumentError(_("Le code %(code)s désigne déjà un modèle d'un autre genre.", code=code))
    if shipped:
        same = session.execute(versions_of_code.where(DocumentTemplate.content_hash == digest,
                                                      DocumentTemplate.shipped).limit(1)).scalar()
        if same is not None:
            return Stored(same, created=False)
    newest = _newest(code)
    if newest is not None and newest.content_hash == digest and newest.label == label:
        return Stored(newest, created=False)
    return None


def _newest(code: str) -> DocumentTemplate | None:
    return session.execute(select(DocumentTemplate).where(DocumentTemplate.code == code)
                           .order_by(DocumentTemplate.version.desc()).limit(1)).scalar()


def _store(code: str, kind: str, label: str, digest: str, *, shipped: bool, **content) -> Stored:
    """The next version. A shipped version arriving while an administrator's upload is the newest
    is stored inactive (held): a release never replaces what an administrator chose."""
    newest = _newest(code)
    held = shipped and newest is not None and not newest.shipped
    template = DocumentTemplate(code=code, kind=kind, label=label, version=(newest.version if newest else 0) + 1,
                                content_hash=digest, uploaded_by=current().actor_label or "system",
                                uploaded_at=clock.now(), active=not held, shipped=shipped, **content)
    session.add(template)
    session.flush()
    return Stored(template, created=True, held=held)


def add_letter(*, code: str, label: str, docx: bytes, filename: str | None = None, shipped: bool = False) -> Stored:
    """Store a .docx as the letter template's next version, after checking it renders."""
    code, label = _check_names(code, label)
    check(docx, letter_data.sample())
    digest = hashlib.sha256(docx).hexdigest()
    known = _unchanged(code, TemplateKind.LETTER, label, digest, shipped=shipped)
    if known is not None:
        return known
    file = stored_file(filename or f"{code}.docx", DOCX_MEDIA_TYPE, docx)
    return _store(code, TemplateKind.LETTER, label, digest, shipped=shipped, file=file)


def add_mail(*, code: str, label: str, subject: str, body: str, shipped: bool = False) -> Stored:
    """Store a mail template's next version (subject and body), after checking both render."""
    code, label = _check_names(code, label)
    subject, body = (subject or "").strip(), (body or "").strip() + "\n"
    if not subject or len(subject) > SUBJECT_MAX or "\n" in subject:
        raise DocumentError(_("L'objet du mail tient sur une ligne de %(max)d caractères au plus.", max=SUBJECT_MAX))
    if not body.strip():
        raise DocumentError(_("Le corps du mail est obligatoire."))
    sample = letter_data.sample()
    render_text(subject, sample)
    render_text(body, sample)
    digest = hashlib.sha256(subject.encode() + b"\0" + body.encode()).hexdigest()
    return _unchanged(code, TemplateKind.MAIL, label, digest, shipped=shipped) or _store(
        code, TemplateKind.MAIL, label, digest, shipped=shipped, subject=subject, body=body)


def set_active(*, template_id: int, active: bool) -> DocumentTemplate:
    template = session.get(DocumentTemplate, template_id)
    if template is None:
        raise DocumentError(_("Modèle inconnu."))
    template.active = active
    session.flush()
    return template


def deploy_directory(root: Path) -> list[Stored]:
    """Store every template of root/catalogue.toml whose content changed; all or nothing (the
    caller rolls back on the first refusal, which names the template)."""
    with (root / "catalogue.toml").open("rb") as handle:
        listing = tomllib.load(handle)
    stored = []
    for code, entry in sorted(listing.get("letters", {}).items()):
        try:
            stored.append(add_letter(code=code, label=entry["label"], docx=(root / entry["file"]).read_bytes(),
                                     filename=Path(entry["file"]).name, shipped=True))
        except DocumentError as exc:
            raise DocumentError(f"{entry['file']} : {exc}") from None
    for code, entry in sorted(listing.get("mails", {}).items()):
        try:
            stored.append(add_mail(code=code, label=entry["label"], subject=entry["subject"],
                                   body=(root / entry["file"]).read_text(encoding="utf-8"), shipped=True))
        except DocumentError as exc:
            raise DocumentError(f"{entry['file']} : {exc}") from None
    return stored

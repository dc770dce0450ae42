"""Deploying processes: each folder of bpmn/ is checked (app.processes.engine.check) and stored as a
new version when its content changed; an unchanged folder creates nothing. Functions flush; the
caller commits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from app import clock
from app.audit.context import current
from app.db import session
from app.processes.engine import ProcessError, check
from app.processes.models import ProcessDefinition

FILE_SUFFIXES = (".bpmn", ".json", ".dmn")
MAX_FILE_BYTES = 1_000_000


def content_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + files[name].encode("utf-8") + b"\0")
    return digest.hexdigest()


def read_folder(folder: Path) -> dict[str, str]:
    """The process files of a folder (diagram, forms, DMN), as text."""
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in FILE_SUFFIXES:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ProcessError(f"{folder.name}/{path.name} : fichier trop gros (1 Mo au plus).")
            try:
                files[path.name] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ProcessError(f"{folder.name}/{path.name} : le fichier n'est pas en UTF-8.") from None
    return files


@dataclass(frozen=True)
class Deployed:
    definition: ProcessDefinition
    created: bool  # False: the same content was already deployed


def latest(key: str) -> ProcessDefinition | None:
    stmt = select(ProcessDefinition).where(ProcessDefinition.key == key).order_by(ProcessDefinition.version.desc())
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def deploy(key: str, files: dict[str, str], *, name: str | None = None,
           change_summary: list[str] | None = None) -> Deployed:
    """Check and store the process as its next version, unless the latest version has this very
    content; name (else the diagram's) and what changed come from the designer."""
    parsed = check(key, files)
    digest = content_hash(parsed.files)
    newest = latest(key)
    if newest is not None and content_hash(newest.files) == digest:
        return Deployed(newest, created=False)
    last = newest.version if newest is not None else 0
    taken = session.execute(select(ProcessDefinition.id).where(
        ProcessDefinition.key == key, ProcessDefinition.content_hash == digest)).first()
    if taken:  # back to an older version's content (a revert): a new version, with an identity of its own
        digest = hashlib.sha256(f"{digest}\0version {last + 1}".encode()).hexdigest()
    definition = ProcessDefinition(key=key, name=(name or parsed.name)[:200], version=last + 1,
                                   content_hash=digest, files=parsed.files, change_summary=change_summary,
                                   deployed_by=current().actor_label or "system", deployed_at=clock.now())
    session.add(definition)
    session.flush()
    return Deployed(definition, created=True)


def deploy_directory(root: Path, keys: list[str] | None = None) -> list[Deployed]:
    """Deploy every process folder under root (or those named); all or nothing: the first refusal
    raises before anything is flushed for the folders after it, and the caller rolls back."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if keys:
        unknown = sorted(set(keys) - {p.name for p in folders})
        if unknown:
            raise ProcessError(f"processus inconnu dans {root} : {', '.join(unknown)}.")
        folders = [p for p in folders if p.name in keys]
    return [deploy(folder.name, read_folder(folder)) for folder in folders]

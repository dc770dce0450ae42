"""PDF copies of generated letters, through LibreOffice (``soffice --headless``) when installed.

Each conversion runs in its own temporary folder with its own LibreOffice profile, so that two
conversions at once (two web threads, a worker) do not fight over one profile's lock. A
conversion that fails or takes longer than ``PDF_TIMEOUT_SECONDS`` gives no PDF: the letter
stays a .docx, and the reason is logged.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/pdf"


def converter() -> str | None:
    """The soffice command, or None when PDF copies are off (DOCUMENT_PDF=off) or not installed."""
    setting = current_app.config.get("DOCUMENT_PDF", "auto")
    if setting == "off":
        return None
    return shutil.which(current_app.config.get("SOFFICE", "soffice"))


def to_pdf(docx: bytes, *, soffice: str | None = None) -> bytes | None:
    """The PDF of a .docx, or None when there is no converter or the conversion failed."""
    soffice = soffice or converter()
    if soffice is None:
        return None
    timeout = current_app.config.get("PDF_TIMEOUT_SECONDS", 60)
    with tempfile.TemporaryDirectory(prefix="guichet-pdf-") as folder:
        work = Path(folder)
        (work / "letter.docx").write_bytes(docx)
        command = [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
                   "--convert-to", "pdf", "--outdir", str(work), str(work / "letter.docx")]
        try:
            subprocess.run(command, check=True, timeout=timeout, capture_output=True)  # noqa: S603 (fixed arguments)
        except (subprocess.SubprocessError, OSError) as exc:
            log.warning("PDF conversion failed: %s", exc)
            return None
        result = work / "letter.pdf"
        return result.read_bytes() if result.exists() else None

"""PDF copies of generated letters, through LibreOffice (``soffice --headless``) when installed.

Each conversion runs in its own temporary folder with its own LibreOffice profile, so that two
conversions at once (two web threads, a worker) do not fight over one profile's lock. A
conversion that fails or takes longer than ``PDF_TIMEOUT_SECONDS`` gives no PDF: the letter
stays a .docx, and the reason is logged.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
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
    return to_pdf_many([docx], soffice=soffice)[0]


def to_pdf_many(documents: list[bytes], *, soffice: str | None = None) -> list[bytes | None]:
    """The PDFs of several .docx in one start of LibreOffice (its start-up is most of a single
    conversion's time), each None when it failed; all None without a converter."""
    soffice = soffice or converter()
    if soffice is None or not documents:
        return [None] * len(documents)
    timeout = current_app.config.get("PDF_TIMEOUT_SECONDS", 60) * max(1, len(documents) // 10 + 1)
    with tempfile.TemporaryDirectory(prefix="guichet-pdf-") as folder:
        work = Path(folder)
        sources = []
        for number, docx in enumerate(documents):
            (work / f"letter-{number}.docx").write_bytes(docx)
            sources.append(str(work / f"letter-{number}.docx"))
        command = [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
                   "--convert-to", "pdf", "--outdir", str(work), *sources]
        try:
            # In its own process group: on a timeout, soffice.bin (which the soffice launcher
            # starts) is killed with it instead of running on.
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: S603
                                       start_new_session=True)
        except OSError as exc:
            log.warning("PDF conversion could not start: %s", exc)
            return [None] * len(documents)
        try:
            _out, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            log.warning("PDF conversion took more than %s s: stopped", timeout)
            return [None] * len(documents)
        if process.returncode != 0:
            log.warning("PDF conversion failed (%s): %s", process.returncode, errors[-500:])
            return [None] * len(documents)
        results = [work / f"letter-{number}.pdf" for number in range(len(documents))]
        return [result.read_bytes() if result.exists() else None for result in results]

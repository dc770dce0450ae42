"""Benchmark of letter generation: rendering, the PDF copy, and a letter kept in a dossier.

Run: ``.venv/bin/python bench/documents.py [--database-url URL] [--letters 60] [--pdf 12]``
(a temporary SQLite file by default; ``--database-url`` names a PostgreSQL database, dropped and
created afresh).

On the six shipped letters, with the data of one real dossier (a Lyon customer, a water contract,
an invoice partly paid, a payment plan and a move-in answered):

1. **render, docxtpl default**: ``DocxTemplate.render`` with docxtpl's own (unsandboxed)
   environment, then ``save``: the floor, per letter.
2. **render, sandboxed**: ``app.documents.rendering.render`` (sandbox, strict undefined,
   autoescape): what Guichet pays per letter, against (1).
3. **PDF**: ``app.documents.pdf.to_pdf`` (a fresh LibreOffice profile per conversion, as the
   application does), against one ``soffice`` run converting all six letters at once with a kept
   profile (what batching would save).
4. **generate**: ``app.documents.service.generate`` (data, render, files, element, audit, commit)
   with PDF off and on: letters per second, and the bytes stored per letter (.docx, PDF).
"""
from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from bench.fresh import demo_app  # noqa: E402

ANSWERS = {"instalments": 6, "first_due_on": "2027-01-15", "move_in_on": "2026-12-01", "index_value": 5230}


def _timed(function, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _line(name: str, times: list[float]) -> None:
    print(f"  {name:44} p50 {statistics.median(times):8.1f} ms   p95 {percentile(times, 95) / 1000:8.1f} ms   "
          f"(n={len(times)})")


def _world():
    from app.contacts.links import Links, ObjectLink, PartyLink
    from app.contacts.objects import Ref
    from app.contracts.models import Contract, ContractParty, Invoice, ServicePoint
    from app.db import session
    from app.dossiers import service as dossiers
    from app.dossiers.models import DossierType
    from app.parties.models import Party, PartyEmail
    from app.security.models import Agent, Territory

    lyon = session.query(Territory).filter(Territory.kind == "commune").first()
    party = Party(number="BENCHDOC01", kind="person", civility="Mme", first_name="Zoé", last_name="Quintard",
                  status="customer", street="3 rue Neuve", postal_code="69002", city="Lyon", territory_id=lyon.id,
                  emails=[PartyEmail(address="zoe@example.fr", position=0)])
    point = ServicePoint(external_ref="BENCH-SP", kind="water", national_id="BENCH-NAT", street="3 rue Neuve",
                         postal_code="69002", city="Lyon", territory_id=lyon.id, main_residence=True)
    contract = Contract(number="EA-BENCH-1", external_ref="BENCH-CT", service_point=point, status="active",
                        start_date=date(2021, 3, 1), offer="Eau standard",
                        parties=[ContractParty(party=party, role="holder")])
    invoice = Invoice(number="F-BENCH-1", external_ref="BENCH-IN", contract=contract, issued_on=date(2026, 9, 1),
                      due_on=date(2026, 10, 1), amount=80, amount_paid=22.7, status="partially_paid")
    kind = DossierType(code="BENCH-DOC", label="Relance d'impayé", target_days=30)
    session.add_all([party, contract, invoice, kind])
    session.flush()
    dossier = dossiers.open_dossier(agent=None, dossier_type_id=kind.id, links=Links(
        parties=[PartyLink(party.id, "customer")],
        objects=[ObjectLink(Ref("contract", contract.id)), ObjectLink(Ref("invoice", invoice.id))]))
    session.commit()
    return dossier, session.query(Agent).first()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--letters", type=int, default=60, help="renders per template and generations")
    parser.add_argument("--pdf", type=int, default=12, help="PDF conversions")
    args = parser.parse_args()

    app, url, workdir = demo_app(args.database_url, prefix="guichet-bench-docs-")
    with app.app_context():
        from docxtpl import DocxTemplate

        from app.db import session
        from app.documents import pdf, templates
        from app.documents import service as documents
        from app.documents.models import TemplateKind
        from app.documents.rendering import render

        templates.deploy_directory(ROOT / "templates_docs")
        session.commit()
        dossier, agent = _world()
        context = documents.letter_context(dossier, agent, ANSWERS)
        codes = [t.code for t in templates.catalogue(TemplateKind.LETTER)]
        sources = {code: templates.latest(code, TemplateKind.LETTER).file.content for code in codes}
        print(f"Database: {url.split('@')[-1]}   letters: {', '.join(codes)}")

        def default_render(data: bytes) -> bytes:
            template = DocxTemplate(io.BytesIO(data))
            template.render(context)
            out = io.BytesIO()
            template.save(out)
            return out.getvalue()

        print("\n1-2. Rendering one letter (all six templates, round robin)")
        for name, function in (("docxtpl default environment", default_render),
                               ("Guichet render (sandboxed)", lambda data: render(data, context))):
            function(sources[codes[0]])  # warm-up
            times = []
            for code in codes:
                times += _timed(lambda code=code, function=function: function(sources[code]), args.letters // 6 or 1)
            _line(name, times)

        soffice = pdf.converter()
        if soffice:
            print("\n3. PDF copy through LibreOffice")
            letters = [render(sources[code], context) for code in codes]
            times = _timed(lambda: pdf.to_pdf(letters[0]), args.pdf)
            _line("to_pdf (fresh profile each time)", times)
            with tempfile.TemporaryDirectory() as folder:
                work = Path(folder)
                for i, data in enumerate(letters):
                    (work / f"l{i}.docx").write_bytes(data)
                command = [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless",
                           "--norestore", "--convert-to", "pdf", "--outdir", str(work),
                           *[str(p) for p in sorted(work.glob("*.docx"))]]
                subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (creates the profile)
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)  # noqa: S603
                batch = (time.perf_counter() - started) * 1000
            print(f"  {'six letters in one soffice run (kept profile)':44} {batch:8.1f} ms, "
                  f"{batch / len(letters):.1f} ms per letter")
        else:
            print("\n3. PDF: soffice not installed, skipped")

        print("\n4. generate(): data, render, files, element, audit, commit")
        for setting in ("off", "auto") if soffice else ("off",):
            app.config["DOCUMENT_PDF"] = setting
            count = args.letters if setting == "off" else args.pdf
            elements = []

            def one(elements=elements):
                code = codes[len(elements) % len(codes)]
                elements.append(documents.generate(dossier=dossier, template_code=code, agent=agent,
                                                   answers=ANSWERS))
                session.commit()

            one()
            times = _timed(one, count)
            _line(f"PDF {setting}", times)
            print(f"  {'':44} {1000 / statistics.median(times):8.1f} letters/s (one thread)")
            last = elements[-1]
            sizes = f".docx {last.file.size / 1024:.1f} KiB"
            if last.pdf_file is not None:
                sizes += f", PDF {last.pdf_file.size / 1024:.1f} KiB"
            print(f"  {'stored per letter':44} {sizes}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

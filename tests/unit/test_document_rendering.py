"""Rendering .docx templates (app.documents.rendering): fields filled and escaped, and what a
template may not do — reach Python internals (docxtpl issue #632's payload), use a field the
context lacks, be broken or not be a .docx — refused with a clear message."""
from __future__ import annotations

import io
import zipfile

import pytest
from docx import Document

from app.documents.rendering import DocumentError, check, render

CONTEXT = {"customer": {"name": "Mme Zoé Quintard", "number": "CL0009001"},
           "invoice": {"number": "F2024-009002", "amount": "57,30 €"}, "today": "28 novembre 2026"}


def template(*paragraphs: str) -> bytes:
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def text_of(data: bytes) -> str:
    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def test_fields_are_filled_and_special_characters_kept_as_text():
    data = template("Lyon, le {{ today }}", "Madame, Monsieur {{ customer.name }} ({{ customer.number }}),",
                    "La facture {{ invoice.number }} de {{ invoice.amount }} reste due.")
    out = render(data, {**CONTEXT, "customer": {"name": "SCI <Les Tilleuls> & Fils", "number": "CL1"}})
    assert text_of(out).splitlines() == ["Lyon, le 28 novembre 2026",
                                        "Madame, Monsieur SCI <Les Tilleuls> & Fils (CL1),",
                                        "La facture F2024-009002 de 57,30 € reste due."]
    with zipfile.ZipFile(io.BytesIO(out)) as archive:  # escaped in the XML, so Word opens it
        assert "SCI &lt;Les Tilleuls&gt; &amp; Fils" in archive.read("word/document.xml").decode()


def test_docxtpls_own_environment_runs_the_payload_ours_refuses_it(tmp_path):
    """The reason for the sandbox: with docxtpl's default environment, issue #632's payload runs a
    command; through render it does not, and the template is refused."""
    from docxtpl import DocxTemplate

    marker = tmp_path / "pwned"
    data = template(f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}")
    DocxTemplate(io.BytesIO(data)).render({})
    assert marker.exists()  # the unsandboxed default would have run it
    marker.unlink()
    with pytest.raises(DocumentError):
        check(data, CONTEXT)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    "{{ customer.name.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__.__init__.__globals__ }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ customer.name.format.__globals__ }}",
])
def test_reaching_python_internals_is_refused_by_the_sandbox(payload):
    with pytest.raises(DocumentError, match="tente d'accéder à des éléments internes"):
        check(template("Bonjour {{ customer.name }}", payload), CONTEXT)


@pytest.mark.parametrize("name", ["cycler", "joiner", "namespace", "range", "lipsum", "dict"])
def test_the_sandbox_has_no_globals(name):
    with pytest.raises(DocumentError, match=f"champ inconnu : '{name}'"):
        check(template(f"{{{{ {name} }}}}"), CONTEXT)


def test_an_unknown_field_is_named():
    with pytest.raises(DocumentError, match="champ inconnu : 'contract'"):
        check(template("Contrat {{ contract.number }}"), CONTEXT)
    with pytest.raises(DocumentError, match="champ inconnu : 'iban'"):
        check(template("IBAN {{ customer.iban }}"), CONTEXT)


def test_broken_syntax_and_files_that_are_not_docx_are_refused():
    with pytest.raises(DocumentError, match="mal écrit"):
        check(template("Bonjour {{ customer.name "), CONTEXT)
    with pytest.raises(DocumentError, match="pas un document Word"):
        check(b"%PDF-1.7 not a docx", CONTEXT)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.txt", "zip, but not Word")
    with pytest.raises(DocumentError, match="pas un document Word"):
        check(archive.getvalue(), CONTEXT)


@pytest.mark.parametrize("expression", ['"x" * 10**10', "9 ** 9 ** 9", "[0] * 10**9", "10 ** 30"])
def test_arithmetic_that_would_exhaust_the_process_is_refused(expression):
    from app.documents.rendering import render_text

    with pytest.raises(DocumentError, match="éléments internes"):
        check(template(f"{{{{ {expression} }}}}"), CONTEXT)
    with pytest.raises(DocumentError):
        render_text(f"{{{{ {expression} }}}}", CONTEXT)


def test_ordinary_arithmetic_still_works():
    from app.documents.rendering import render_text

    assert render_text("{{ 3 * 4 }} {{ 2 ** 10 }} {{ '-' * 5 }}", {}) == "12 1024 -----"

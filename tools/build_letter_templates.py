"""Write the shipped letter templates (templates_docs/letters/*.docx) from the texts below.

The .docx files are committed; run this again after changing a text
(``.venv/bin/python -m tools.build_letter_templates``), then ``flask documents deploy`` stores
each changed template as its next version. The layout is the French business letter: the
utility's letterhead, the addressee's block on the right (for window envelopes), the date, the
references, the subject line, the body, the signature. Fields are docxtpl/Jinja expressions over
the letter data of app/documents/context.py; ``{%p if … %}`` paragraphs appear only when the
value is there.
"""
from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt

ROOT = Path(__file__).resolve().parent.parent / "templates_docs" / "letters"

CLOSING = ("Nous vous prions d'agréer, {{ customer.salutation }}, l'expression de nos salutations "
           "distinguées.")
HELP = ("Pour toute question, notre service clientèle est à votre écoute au {{ organisation.phone }} "
        "ou à l'adresse {{ organisation.email }}, en rappelant la référence {{ dossier.reference }}.")
DIFFICULTY = ("Si vous rencontrez des difficultés pour régler cette somme, contactez-nous sans attendre : "
              "nous pouvons convenir d'un échéancier, et vous orienter vers le Fonds de solidarité pour le "
              "logement (FSL) de votre département ou le centre communal d'action sociale de votre commune.")

LETTERS = {
    "request_acknowledgement": (
        "Accusé de réception de votre demande",
        [
            "Nous avons bien reçu votre demande « {{ dossier.subject }} », enregistrée le {{ dossier.opened_on }} "
            "sous la référence {{ dossier.reference }}.",
            "Nos services l'étudient et reviendront vers vous dans les meilleurs délais. Rappelez cette "
            "référence dans vos échanges avec nous : elle nous permet de retrouver votre demande immédiatement.",
            HELP,
        ],
    ),
    "move_in_welcome": (
        "Bienvenue : votre contrat n° {{ contract.number }}",
        [
            "Nous avons le plaisir de vous confirmer l'ouverture de votre contrat « {{ contract.offer }} » "
            "({{ contract.energy }}) pour le logement situé {{ contract.address_1 }}, {{ contract.address_2 }}, "
            "à compter du {{ contract.start_date }}.",
            "{%p if move.move_in_on %}",
            "Date d'emménagement enregistrée : {{ move.move_in_on }}.",
            "{%p endif %}",
            "{%p if move.index_value %}",
            "Index du compteur relevé à votre arrivée : {{ move.index_value }}. C'est à partir de cet index "
            "que votre consommation vous sera facturée.",
            "{%p endif %}",
            "Votre numéro de client est le {{ customer.number }}. Il vous sera demandé pour toute démarche, "
            "en agence, par téléphone ou sur votre espace en ligne.",
            HELP,
        ],
    ),
    "payment_plan_agreement": (
        "Échéancier de paiement",
        [
            "Suite à notre échange, nous vous confirmons l'accord suivant pour le règlement du solde de "
            "{{ plan.total }} restant dû sur la facture n° {{ invoice.number }} du {{ invoice.issued_on }} :",
            "{{ plan.instalments }} mensualités de {{ plan.instalment_amount }}, la première étant exigible le "
            "{{ plan.first_due_on }}, les suivantes le même jour des mois suivants.",
            "Vos factures à venir restent dues à leur date d'échéance habituelle. Si une mensualité n'était "
            "pas réglée, l'échéancier prendrait fin et le solde restant deviendrait exigible.",
            "Merci de nous retourner un exemplaire de ce courrier daté et signé, précédé de la mention "
            "« Bon pour accord ».",
            HELP,
        ],
    ),
    "unpaid_reminder_1": (
        "Rappel : {{ overdue.invoice_count }} facture(s) non réglée(s)",
        [
            "Sauf erreur de notre part, votre contrat n° {{ contract.number }} présente un solde impayé de "
            "{{ overdue.amount }} au titre de la ou des factures n° {{ overdue.invoice_numbers }}, arrivées à "
            "échéance depuis le {{ overdue.since }}.",
            "Il s'agit peut-être d'un simple oubli : nous vous remercions de régler cette somme dans les "
            "meilleurs délais. Si votre paiement nous est parvenu entre-temps, ne tenez pas compte de ce courrier.",
            DIFFICULTY,
            HELP,
        ],
    ),
    "unpaid_reminder_2": (
        "Second rappel : {{ overdue.invoice_count }} facture(s) non réglée(s)",
        [
            "Malgré notre précédent rappel, votre contrat n° {{ contract.number }} présente toujours un solde "
            "impayé de {{ overdue.amount }} (factures n° {{ overdue.invoice_numbers }}, échues depuis le "
            "{{ overdue.since }}).",
            "Nous vous demandons de régler cette somme sous quinze jours. À défaut, nous serons contraints de "
            "vous adresser une mise en demeure.",
            DIFFICULTY,
            HELP,
        ],
    ),
    "formal_notice": (
        "Mise en demeure de payer",
        [
            "Malgré nos rappels, votre contrat n° {{ contract.number }} reste impayé pour un montant de "
            "{{ overdue.amount }} (factures n° {{ overdue.invoice_numbers }}, échues depuis le {{ overdue.since }}).",
            "Par la présente, nous vous mettons en demeure de régler cette somme dans un délai de huit jours "
            "à compter de la réception de ce courrier. À défaut, nous engagerons les procédures de recouvrement "
            "prévues par votre contrat et par la loi.",
            "Les protections prévues par la réglementation restent applicables : aucune coupure ni réduction "
            "de la fourniture d'eau de votre résidence principale pour impayé, aucune interruption de la "
            "fourniture d'énergie pendant la trêve hivernale (du 1er novembre au 31 mars).",
            DIFFICULTY,
            HELP,
        ],
    ),
}


def _paragraph(document, text: str, *, bold: bool = False, align=None, indent: float | None = None,
               space_after: int = 8):
    paragraph = document.add_paragraph()
    run = paragraph.add_run(text)  # one run per paragraph: docxtpl sees each tag whole
    run.bold = bold
    paragraph.paragraph_format.space_after = Pt(space_after)
    if align is not None:
        paragraph.alignment = align
    if indent is not None:
        paragraph.paragraph_format.left_indent = Cm(indent)
    return paragraph


def letter(subject: str, body: list[str]) -> Document:
    document = Document()
    section = document.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)  # A4
    section.left_margin = section.right_margin = Cm(2.2)
    section.top_margin, section.bottom_margin = Cm(1.8), Cm(2.0)
    style = document.styles["Normal"]
    style.font.name, style.font.size = "DejaVu Sans", Pt(10)

    _paragraph(document, "{{ organisation.name }}", bold=True, space_after=0)
    for field in ("address_1", "address_2", "phone", "email"):
        _paragraph(document, "{{ organisation." + field + " }}", space_after=0)
    _paragraph(document, "", space_after=24)
    _paragraph(document, "{{ customer.name }}", indent=9.5, space_after=0)
    for field in ("address_1", "address_2", "address_3"):
        _paragraph(document, "{{ customer." + field + " }}", indent=9.5, space_after=0)
    _paragraph(document, "", space_after=18)
    _paragraph(document, "Le {{ today }}", align=WD_ALIGN_PARAGRAPH.RIGHT, space_after=18)
    _paragraph(document, "Vos références : client {{ customer.number }} · contrat {{ contract.number }} · "
                         "dossier {{ dossier.reference }}", space_after=4)
    _paragraph(document, f"Objet : {subject}", bold=True, space_after=18)
    _paragraph(document, "{{ customer.salutation }},")
    for text in body:
        _paragraph(document, text, align=None if text.startswith("{%") else WD_ALIGN_PARAGRAPH.JUSTIFY)
    _paragraph(document, CLOSING, space_after=24)
    _paragraph(document, "{{ agent.name }}", indent=9.5, space_after=0)
    _paragraph(document, "Service clientèle, {{ organisation.name }}", indent=9.5)
    if "plan" in " ".join(body):
        _paragraph(document, "", space_after=18)
        _paragraph(document, "Bon pour accord, le {{ customer.salutation }} {{ customer.name }}", space_after=0)
        _paragraph(document, "Date et signature :", space_after=48)
    return document


def _fixed_times(docx: bytes) -> bytes:
    """The same archive with every entry dated 28 November 2026: a .docx is a zip whose entries
    carry the time they were written, which would make each rebuild a different file."""
    source, result = zipfile.ZipFile(io.BytesIO(docx)), io.BytesIO()
    with zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(zipfile.ZipInfo(entry.filename, date_time=(2026, 11, 28, 0, 0, 0)),
                            source.read(entry.filename), compress_type=zipfile.ZIP_DEFLATED)
    return result.getvalue()


def main() -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    for code, (subject, body) in LETTERS.items():
        document = letter(subject, body)
        document.core_properties.title = subject.split("{{")[0].strip(" :n°")
        document.core_properties.author = "Guichet"
        # Fixed dates: rebuilding an unchanged text gives the same file, hence no new version.
        document.core_properties.created = document.core_properties.modified = datetime(2026, 11, 28)
        document.core_properties.revision = 1
        buffer = io.BytesIO()
        document.save(buffer)
        (ROOT / f"{code}.docx").write_bytes(_fixed_times(buffer.getvalue()))
        print(f"{ROOT / code}.docx")  # noqa: T201 (a command-line tool)


if __name__ == "__main__":
    main()

"""A letter's data (app.documents.context): French dates and amounts, every section always present
with every field, and templates checked against the same shape."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from app.contracts.models import Contract, Invoice, ServicePoint
from app.documents.context import FIELDS, build, euros, french_date, sample
from app.documents.rendering import DocumentError, check, render
from app.dossiers.models import Dossier, DossierType
from app.parties.models import Party, PartyEmail
from app.security.models import Agent
from tests.unit.test_document_rendering import template, text_of

NNBSP, NBSP = "\u202f", "\xa0"


def test_dates_and_amounts_are_written_the_french_way():
    assert french_date(date(2026, 12, 1)) == "1er décembre 2026"
    assert french_date(date(2027, 1, 15)) == "15 janvier 2027"
    assert euros(Decimal("1234.5")) == f"1{NNBSP}234,50{NBSP}€"
    assert euros(Decimal("57.3")) == f"57,30{NBSP}€"
    assert french_date(None) == "" and euros(None) == ""


def test_a_letter_about_a_customer_invoice_and_dossier():
    party = Party(number="CL0009001", civility="Mme", first_name="Zoé", last_name="Quintard", kind="person",
                  street="3 rue Neuve", postal_code="69002", city="Lyon",
                  emails=[PartyEmail(address="zoe@example.fr", position=0)])
    point = ServicePoint(kind="water", street="3 rue Neuve", postal_code="69002", city="Lyon")
    contract = Contract(number="EA-2021-009002", offer="Eau standard", start_date=date(2021, 3, 1), service_point=point)
    invoice = Invoice(number="F2024-009002", issued_on=date(2024, 6, 1), due_on=date(2024, 7, 1),
                      amount=Decimal("80.00"), amount_paid=Decimal("22.70"))
    dossier = Dossier(reference="DOS-2026-000007", subject="Échéancier", dossier_type=DossierType(label="Plan"),
                      created_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 1 December in Paris
    data = build(party=party, contract=contract, invoice=invoice, dossier=dossier,
                 agent=Agent(full_name="Camille Lefèvre", email="camille@guichet.test"),
                 organisation={"name": "Eau du Grand Lyon"}, today=date(2026, 11, 28))
    assert data["customer"]["salutation"] == "Madame" and data["customer"]["name"] == "Mme Zoé Quintard"
    assert (data["customer"]["address_1"], data["customer"]["address_2"], data["customer"]["address_3"]) == \
        ("3 rue Neuve", "69002 Lyon", "")
    assert data["contract"]["energy"] == "eau" and data["contract"]["start_date"] == "1er mars 2021"
    assert data["invoice"]["balance"] == f"57,30{NBSP}€" and data["invoice"]["due_on"] == "1er juillet 2024"
    assert data["dossier"]["opened_on"] == "1er décembre 2026"
    assert data["today"] == "28 novembre 2026" and data["organisation"]["phone"] == ""
    letter = template("{{ organisation.name }}, le {{ today }}", "{{ customer.salutation }},",
                      "Votre facture {{ invoice.number }} : reste dû {{ invoice.balance }}.")
    assert text_of(render(letter, data)).splitlines()[2] == f"Votre facture F2024-009002 : reste dû 57,30{NBSP}€."


def test_every_section_is_there_even_when_the_letter_is_about_nothing_of_it():
    data = build(today=date(2026, 11, 28))
    assert {name: set(values) for name, values in data.items() if name != "today"} == \
        {name: set(fields) for name, fields in FIELDS.items()}
    assert all(value == "" for name in FIELDS for value in data[name].values())
    assert set(sample()) == set(data)
    check(template("{{ customer.name }} {{ invoice.balance }} {{ dossier.reference }}"), data)


def test_a_template_is_checked_against_the_known_fields():
    check(template("{{ customer.salutation }} {{ contract.energy }} {{ today }}"), sample())
    # (customer.iban is a field now, masked without party.sensitive: test_sensitive_fields.py)
    with pytest.raises(DocumentError, match="champ inconnu : 'password'"):
        check(template("{{ customer.password }}"), sample())

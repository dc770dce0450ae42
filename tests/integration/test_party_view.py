"""The 360° customer view over HTTP: header and alerts, contracts and the current contract, the
consumption chart, invoices, the "informer le client" panel, the history timeline, the actions,
scope, and a statement count that does not grow with the customer's data. Runs unchanged on SQLite
and PostgreSQL; "today" is frozen to 10 March 2025, 10:00 UTC (11:00 in Paris)."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from itertools import count

import pytest
from sqlalchemy import select

from app.audit.context import AuditContext, set_context
from app.contracts.models import (
    Contract,
    ContractParty,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.db import session
from app.parties import overview, timeline
from app.parties.models import Party, PartyPhone
from tests.conftest import statements_sent
from tests.factories import AgentFactory, role_with
from tests.integration.test_billing_import import communes  # noqa: F401  (fixture)

TODAY = date(2025, 3, 10)
_refs = count(1)


# --- Building customers -------------------------------------------------------------------------

def _party(number: str, first: str, last: str, territory, **fields) -> Party:
    fields.setdefault("status", "customer")
    party = Party(number=number, kind="person", civility="Mme", first_name=first, last_name=last,
                  street=f"{next(_refs)} rue des Essais", postal_code="69002", city=territory.name,
                  insee_code=territory.insee_code, territory_id=territory.id, **fields)
    session.add(party)
    return party


def _contract(party: Party, number: str, territory, *, kind: str = "electricity", status: str = "active",
              start: date = date(2020, 1, 1), end: date | None = None, main_residence: bool = True,
              national_id: str | None = None, role: str = "holder") -> Contract:
    ref = next(_refs)
    point = ServicePoint(external_ref=f"SP-{ref}", kind=kind, national_id=national_id or f"NAT-{ref:010d}",
                         street=f"{ref} avenue du Compteur", postal_code="69002", city=territory.name,
                         insee_code=territory.insee_code, territory_id=territory.id, main_residence=main_residence)
    contract = Contract(number=number, external_ref=f"CT-{ref}", service_point=point, status=status, start_date=start,
                        end_date=end, offer="Offre test", parties=[ContractParty(party=party, role=role)])
    session.add(contract)
    return contract


def _invoice(contract: Contract, number: str, *, issued: date, due: date, amount: str, paid: str = "0",
             status: str | None = None) -> Invoice:
    amount_, paid_ = Decimal(amount), Decimal(paid)
    if status is None:
        status = "paid" if paid_ == amount_ else "partially_paid" if paid_ else "open"
    invoice = Invoice(number=number, external_ref=f"IN-{next(_refs)}", contract=contract, issued_on=issued,
                      due_on=due, amount=amount_, amount_paid=paid_, status=status)
    session.add(invoice)
    return invoice


def _payment(invoice: Invoice, *, paid_on: date, amount: str, method: str = "carte") -> Payment:
    payment = Payment(external_ref=f"PM-{next(_refs)}", invoice=invoice, paid_on=paid_on, amount=Decimal(amount),
                      method=method)
    session.add(payment)
    return payment


def _meter(contract: Contract, serial: str, installed: date, removed: date | None = None) -> Meter:
    meter = Meter(serial=serial, kind=contract.service_point.kind)
    session.add_all([meter, MeterInstallation(meter=meter, service_point=contract.service_point,
                                              installed_on=installed, removed_on=removed)])
    return meter


def _reading(contract: Contract, meter: Meter, read_on: date, index: int, kind: str = "actual") -> MeterReading:
    session.flush()
    reading = MeterReading(external_ref=f"RD-{next(_refs)}", meter_id=meter.id,
                           service_point_id=contract.service_point.id, read_on=read_on, index_value=index, kind=kind)
    session.add(reading)
    return reading


# --- Reading the page ---------------------------------------------------------------------------

VOID = {"br", "input", "img", "meta", "link", "hr", "col", "source"}


class _Grab(HTMLParser):
    """The text inside the element with a given id, each tag read as a blank."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.found, self.parts = element_id, 0, False, []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag not in VOID
            self.parts.append(" ")
        elif dict(attrs).get("id") == self.element_id and not self.found:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            self.parts.append(" ")

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def plain(text: str) -> str:
    """Spaces as one reads them: Babel's no-break spaces as plain ones, runs of blanks as one."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " ")).strip()


def text_of(html: str, element_id: str) -> str | None:
    grab = _Grab(element_id)
    grab.feed(html)
    return plain("".join(grab.parts)) if grab.found else None


def selected_contract(html: str) -> str | None:
    match = re.search(r'<li class="selected" aria-current="true">\s*<strong>([^<]+)</strong>', html)
    return match.group(1) if match else None


def bars(html: str) -> list[tuple[str, int]]:
    """The consumption chart's bars: (end date, value), left to right."""
    found = re.findall(r'<g class="bar" data-value="(\d+)" data-end="([^"]+)"', html)
    return [(end, int(value)) for value, end in found]


def timeline_kinds(html: str) -> list[str]:
    return re.findall(r'<li class="event event-[a-z_]+" data-kind="([a-z_]+)"', html)


# --- Fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def today(frozen_clock):
    frozen_clock.current = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
    return TODAY


@pytest.fixture
def helene(communes, today):  # noqa: F811
    """A Lyon customer with two contracts in Lyon and one in Nice (out of the Lyon agents' scope).

    Electricity (active, started 2022, the newest: the default one): a meter changed in 2024,
    readings, invoices (one overdue open, one overdue cancelled, one overdue but paid, one to
    come), payments.
    Water (active, started 2021): one overdue partially paid invoice.
    Gas in Nice: an overdue invoice that Lyon agents must not count.
    """
    lyon, nice = communes["lyon"], communes["nice"]
    party = _party("CL7000001", "Hélène", "Testeuse", lyon, vulnerable=True,
                   phones=[PartyPhone(number="+33612345678", label="mobile", position=0)])
    elec = _contract(party, "EL-T-0001", lyon, start=date(2022, 9, 1), national_id="01234567890123")
    water = _contract(party, "EA-T-0002", lyon, kind="water", start=date(2021, 6, 1), main_residence=False)
    gas = _contract(party, "GA-T-0003", nice, kind="gas", start=date(2019, 1, 1))
    old = _meter(elec, "OLD-0001", date(2015, 1, 1), date(2024, 4, 15))
    new = _meter(elec, "NEW-0002", date(2024, 4, 15))
    _reading(elec, old, date(2020, 11, 5), 900)  # before the contract: the previous occupant's
    _reading(elec, old, date(2024, 1, 10), 1000)
    _reading(elec, old, date(2024, 2, 10), 1150)
    _reading(elec, old, date(2024, 3, 10), 1230)
    _reading(elec, new, date(2024, 5, 10), 5)  # the new meter's first reading: no consumption
    _reading(elec, new, date(2024, 6, 10), 45)
    _reading(elec, new, date(2025, 2, 20), 345, kind="estimated")
    late = _invoice(elec, "F-E-01", issued=date(2025, 1, 15), due=date(2025, 1, 30), amount="120.00", paid="20.00")
    _invoice(elec, "F-E-02", issued=date(2024, 12, 1), due=date(2024, 12, 16), amount="99.00",
             status="cancelled")
    paid = _invoice(elec, "F-E-03", issued=date(2024, 11, 1), due=date(2024, 11, 16), amount="80.00", paid="80.00")
    _invoice(elec, "F-E-04", issued=date(2025, 3, 1), due=date(2025, 3, 16), amount="64.20")
    _payment(paid, paid_on=date(2024, 11, 12), amount="80.00", method="prelevement")
    _payment(late, paid_on=date(2025, 2, 1), amount="20.00")
    partly = _invoice(water, "F-W-01", issued=date(2025, 2, 10), due=date(2025, 2, 25), amount="1300.50",
                      paid="1270.00")
    _payment(partly, paid_on=date(2025, 2, 20), amount="1270.00", method="virement")
    _invoice(gas, "F-G-01", issued=date(2024, 10, 1), due=date(2024, 10, 16), amount="500.00")
    session.commit()
    return {"party": party, "elec": elec, "water": water, "gas": gas}


@pytest.fixture
def lyon_agent(login_as, communes):  # noqa: F811
    return login_as("accueil", territories=[communes["lyon_agency"]])


# --- Header -------------------------------------------------------------------------------------

def test_header_shows_identity_contacts_and_alerts_computed_from_dates(client, helene, lyon_agent):
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "party-name") == "Mme Hélène Testeuse"
    assert text_of(html, "party-number") == "CL7000001"
    assert text_of(html, "party-status") == "Client"
    assert "06 12 34 56 78 mobile" in text_of(html, "party-contact")
    # Overdue on 10 March 2025: F-E-01 (100.00 left, due 30 Jan) and F-W-01 (30.50 left, due 25 Feb).
    # Not F-E-02 (cancelled), F-E-03 (paid), F-E-04 (due 16 March), nor F-G-01 (Nice: out of scope).
    assert text_of(html, "alert-overdue") == "Impayé : 130,50 € en retard depuis le 30 janv. 2025 (2 factures)"
    # Vulnerability is sensitive: accueil lacks party.sensitive (tests/integration/test_sensitive_fields.py).
    assert text_of(html, "alert-vulnerable") is None
    assert text_of(html, "alert-main-residence") == "Résidence principale"  # electricity, the default contract
    assert text_of(html, "alert-dossiers") is None  # no dossier model yet: the hook returns none
    assert text_of(html, "alert-duplicates") is None
    assert "GA-T-0003" not in html and "F-G-01" not in html


def test_overdue_starts_the_day_after_the_due_date(client, helene, lyon_agent, frozen_clock):
    frozen_clock.current = datetime(2025, 1, 30, 22, 30, tzinfo=UTC)  # 23:30 on 30 January in Paris
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "alert-overdue") is None  # F-E-01 falls due today: not late yet
    frozen_clock.current = datetime(2025, 1, 30, 23, 30, tzinfo=UTC)  # 00:30 on 31 January in Paris
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "alert-overdue") == "Impayé : 100,00 € en retard depuis le 30 janv. 2025 (1 facture)"


def test_header_says_who_changed_the_customer_last_and_when(client, helene, lyon_agent, frozen_clock):
    party = helene["party"]
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert text_of(html, "last-change") == "Créé par test le 10/03/2025 11:00"
    frozen_clock.advance(minutes=25)
    set_context(AuditContext(actor_label="marie.martin"))
    party.street = "1 place Neuve"
    session.commit()
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert text_of(html, "last-change") == "Modifié par marie.martin le 10/03/2025 11:25"


def test_the_main_residence_alert_follows_the_current_contract(client, helene, lyon_agent, communes):  # noqa: F811
    party = helene["party"]
    html = client.get(f"/clients/{party.id}?contract={helene['water'].id}").get_data(as_text=True)
    assert text_of(html, "alert-main-residence") is None  # this service point is a secondary home
    assert text_of(html, "main-residence") == "non"
    water = _contract(party, "EA-T-0009", communes["lyon"], kind="water", start=date(2023, 1, 1))
    session.commit()
    html = client.get(f"/clients/{party.id}?contract={water.id}").get_data(as_text=True)
    assert text_of(html, "alert-main-residence") == \
        "Résidence principale : pas de coupure ni de réduction d'eau pour impayé"


def test_suspected_duplicates_are_flagged_with_links(client, helene, lyon_agent, communes):  # noqa: F811
    twin = _party("CL7000002", "Hélène", "Testeuse", communes["lyon"],
                  phones=[PartyPhone(number="+33612345678", label="mobile", position=0)])
    session.commit()
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert "CL7000002" in text_of(html, "alert-duplicates")
    assert f'href="/clients/{twin.id}"' in html


def test_actions_edit_with_party_write_new_contact_and_dossier_with_their_permissions(client, helene, login_as, auth,
                                                                                    communes):  # noqa: F811
    login_as("accueil", territories=[communes["lyon_agency"]])
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert f'href="/clients/{helene["party"].id}/modifier"' in html and text_of(html, "action-edit") == "Modifier"
    new_contact = f'href="/contacts/nouveau?party={helene["party"].id}&amp;contract='
    assert re.search(re.escape(new_contact) + r'\d+" role="button" class="secondary" id="action-new-contact"', html)
    assert re.search(re.escape(new_contact) + r'\d+&amp;then=dossier" [^>]*id="action-open-dossier"', html)
    auth.logout()
    login_as("superviseur", territories=[communes["lyon_agency"]])
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "party-name") == "Mme Hélène Testeuse" and text_of(html, "action-edit") is None
    auth.logout()
    login_as("lecture", territories=[communes["lyon_agency"]], permissions=["party.read"])
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert 'id="action-new-contact"' not in html and 'id="action-open-dossier"' not in html
    assert 'id="new-contact"' not in html


# --- Contracts and the current contract ---------------------------------------------------------

def test_contract_switching_is_remembered_per_party(client, helene, lyon_agent, communes):  # noqa: F811
    party, elec, water = helene["party"], helene["elec"], helene["water"]
    other = _party("CL7000099", "Paul", "Autre", communes["lyon"])
    other_contract = _contract(other, "EL-T-0099", communes["lyon"])
    session.commit()
    assert selected_contract(client.get(f"/clients/{party.id}").get_data(as_text=True)) == "EL-T-0001"
    html = client.get(f"/clients/{party.id}?contract={water.id}").get_data(as_text=True)
    assert selected_contract(html) == "EA-T-0002"
    assert text_of(html, "service-point-id") == water.service_point.national_id
    assert f'href="/clients/{party.id}?contract={elec.id}"' in html  # the other tab is a plain link
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert selected_contract(html) == "EA-T-0002"  # remembered
    assert selected_contract(client.get(f"/clients/{other.id}").get_data(as_text=True)) == "EL-T-0099"
    with client.session_transaction() as cookie:
        assert cookie["current_contract"] == {str(party.id): water.id, str(other.id): other_contract.id}
    with client.application.test_request_context():
        from flask import session as flask_session

        flask_session["current_contract"] = {str(party.id): water.id}
        assert overview.current_contract_id(party.id) == water.id and overview.current_contract_id(other.id) is None
        overview.remember_current_contract(party.id, elec.id)
        assert overview.current_contract_id(party.id) == elec.id


def test_a_contract_of_another_party_or_out_of_scope_is_ignored(client, helene, lyon_agent, communes):  # noqa: F811
    party = helene["party"]
    stranger = _party("CL7000098", "Jean", "Étranger", communes["lyon"])
    foreign = _contract(stranger, "EL-T-0098", communes["lyon"])
    session.commit()
    html = client.get(f"/clients/{party.id}?contract={foreign.id}").get_data(as_text=True)
    assert selected_contract(html) == "EL-T-0001" and "EL-T-0098" not in html  # the first active one
    client.get(f"/clients/{party.id}?contract={helene['water'].id}")
    for ignored in (foreign.id, helene["gas"].id, 10**9):  # another's, out of scope, missing
        html = client.get(f"/clients/{party.id}?contract={ignored}").get_data(as_text=True)
        assert selected_contract(html) == "EA-T-0002", ignored  # the remembered one
        assert "GA-T-0003" not in html and "EL-T-0098" not in html
    with client.session_transaction() as cookie:
        assert cookie["current_contract"] == {str(party.id): helene["water"].id}


def test_the_first_active_contract_is_the_default(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7000050", "Anne", "Déménagée", communes["lyon"])
    _contract(party, "EL-T-OLD", communes["lyon"], status="terminated", start=date(2024, 6, 1), end=date(2025, 1, 1))
    _contract(party, "EL-T-NEW", communes["lyon"], status="active", start=date(2018, 1, 1))
    session.commit()
    assert selected_contract(client.get(f"/clients/{party.id}").get_data(as_text=True)) == "EL-T-NEW"


def test_an_agent_of_another_territory_gets_a_404(client, helene, login_as, communes):  # noqa: F811
    login_as("accueil", territories=[communes["nice_agency"]])
    # Hélène lives in Lyon, but her gas contract is in Nice: the Nice agent sees her, not her Lyon contracts.
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert selected_contract(html) == "GA-T-0003" and "EL-T-0001" not in html
    assert text_of(html, "alert-overdue") == "Impayé : 500,00 € en retard depuis le 16 oct. 2024 (1 facture)"
    lyon_only = _party("CL7000051", "Luc", "Lyonnais", communes["lyon"])
    _contract(lyon_only, "EL-T-0051", communes["lyon"])
    session.commit()
    assert client.get(f"/clients/{lyon_only.id}").status_code == 404
    assert client.get(f"/clients/{lyon_only.id}/historique").status_code == 404


def test_current_contract_details(client, helene, lyon_agent):
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "service-point-id") == "01234567890123"
    assert "PDL" in text_of(html, "service-point") and "Électricité" in text_of(html, "service-point")
    assert "Compteur posé : NEW-0002" in text_of(html, "meter")
    readings = text_of(html, "readings")
    assert readings.index("20 févr. 2025 345 Estimé") < readings.index("10 janv. 2024 1000 Réel")
    assert "900" not in readings  # taken before the contract started: the previous occupant's
    summary = text_of(html, "invoice-summary")
    assert "Prochaine échéance : 16 mars 2025, 64,20 €." in summary
    assert "En retard sur ce contrat : 100,00 € depuis le 30 janv. 2025." in summary
    invoices = text_of(html, "invoices")
    assert invoices.index("F-E-04") < invoices.index("F-E-01") < invoices.index("F-E-02")  # newest first
    assert "F-E-01 15 janv. 2025 30 janv. 2025 120,00 € 20,00 € 100,00 € Partiellement payée En retard" in invoices
    assert "F-E-02 1 déc. 2024 16 déc. 2024 99,00 € 0,00 € 99,00 € Annulée" in invoices  # cancelled: not late
    assert text_of(html, "payments") == ("Derniers paiements Date Montant Mode Facture "
                                         "1 févr. 2025 20,00 € Carte bancaire F-E-01 "
                                         "12 nov. 2024 80,00 € Prélèvement F-E-03")


def test_invoices_are_paginated(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7000060", "Ines", "Factures", communes["lyon"])
    contract = _contract(party, "EL-T-0060", communes["lyon"])
    for i in range(30):
        issued = date(2022, 1, 1) + timedelta(days=30 * i)
        _invoice(contract, f"F-P-{i:02d}", issued=issued, due=issued + timedelta(days=15), amount="10.00", paid="10.00")
    session.commit()
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    numbers = re.findall(r"F-P-\d\d", text_of(html, "invoices"))
    assert numbers == [f"F-P-{i:02d}" for i in range(29, 17, -1)]  # the latest 12
    assert f'href="/clients/{party.id}?contract={contract.id}&amp;invoices_page=2#invoices"' in html
    html = client.get(f"/clients/{party.id}?invoices_page=3").get_data(as_text=True)
    assert re.findall(r"F-P-\d\d", text_of(html, "invoices")) == [f"F-P-{i:02d}" for i in range(5, -1, -1)]
    assert "invoices_page=4" not in html and "invoices_page=2" in html
    assert "F-P-29" in text_of(html, "inform-last-bill")  # the last bill whatever the page


# --- Consumption chart --------------------------------------------------------------------------

def test_the_chart_bars_are_the_differences_between_readings_of_the_same_meter(client, helene, lyon_agent):
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    # 1000 → 1150 → 1230 on the old meter; the new one starts at 5, then 45 and 345.
    assert bars(html) == [("2024-02-10", 150), ("2024-03-10", 80), ("2024-06-10", 40), ("2025-02-20", 300)]
    assert html.count('class="meter-change"') == 1
    assert '<title id="chart-title">Consommation entre deux relevés (kWh)</title>' in html
    assert "Du 10 mai 2024 au 10 juin 2024 : 40 kWh (compteur NEW-0002)" in html
    heights = [float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', html)]
    assert heights[3] == max(heights) and heights[2] == pytest.approx(heights[3] * 40 / 300, abs=0.1)


def test_consumptions_restart_after_a_meter_change_or_an_index_going_down(app_ctx, helene):
    elec = helene["elec"]
    readings = session.execute(select(MeterReading).where(MeterReading.service_point_id == elec.service_point_id,
                                                          MeterReading.read_on >= elec.start_date)).scalars().all()
    series = overview.consumptions(readings)
    assert [(c.end, c.value, c.after_meter_change) for c in series] == [
        (date(2024, 2, 10), 150, False), (date(2024, 3, 10), 80, False),
        (date(2024, 6, 10), 40, True), (date(2025, 2, 20), 300, False)]
    meter = readings[-1].meter
    lower = MeterReading(meter_id=meter.id, meter=meter, read_on=date(2025, 3, 1), index_value=10, kind="actual")
    assert overview.consumptions([*readings, lower])[-1].end == date(2025, 2, 20)  # no negative bar
    assert overview.chart([], "kWh") is None


# --- Informer le client -------------------------------------------------------------------------

def test_the_informer_panel_answers_from_live_data(client, helene, lyon_agent):
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    assert text_of(html, "inform-last-bill") == \
        "Votre dernière facture (n° F-E-04) date du 1 mars 2025 : 64,20 €, dont 64,20 € restent à payer."
    assert text_of(html, "inform-next-due") == \
        "Votre prochaine échéance est le 16 mars 2025 : 64,20 € à payer (facture n° F-E-04)."
    assert text_of(html, "inform-overdue") == "Vous avez 130,50 € d'impayé depuis le 30 janvier 2025."
    assert text_of(html, "inform-last-reading") == \
        "Votre dernier relevé, du 20 février 2025, est une estimation : index 345. Le compteur n'a pas été relevé."
    assert text_of(html, "inform-dossiers") == "Vous n'avez aucun dossier en cours."
    html = client.get(f"/clients/{helene['party'].id}?contract={helene['water'].id}").get_data(as_text=True)
    assert text_of(html, "inform-last-bill") == ("Votre dernière facture (n° F-W-01) date du 10 février 2025 : "
                                                 "1 300,50 €, dont 30,50 € restent à payer.")
    assert text_of(html, "inform-next-due") == "Vous n'avez pas d'échéance à venir."
    assert text_of(html, "inform-last-reading") == "Aucun relevé pour ce contrat."


def test_the_informer_panel_of_a_customer_who_owes_nothing(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7000070", "Zoé", "Àjour", communes["lyon"])
    contract = _contract(party, "EA-T-0070", communes["lyon"], kind="water", main_residence=False)
    invoice = _invoice(contract, "F-Z-01", issued=date(2025, 1, 5), due=date(2025, 1, 20), amount="42.00", paid="42.00")
    _payment(invoice, paid_on=date(2025, 1, 18), amount="42.00")
    meter = _meter(contract, "EAU-T-70", date(2019, 1, 1))
    _reading(contract, meter, date(2025, 1, 2), 310, kind="customer")
    session.commit()
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert text_of(html, "inform-last-bill") == \
        "Votre dernière facture (n° F-Z-01) date du 5 janvier 2025 : 42,00 €, réglée."
    assert text_of(html, "inform-overdue") == "Vous n'avez aucun impayé."
    assert text_of(html, "inform-last-reading") == \
        "Votre dernier relevé, du 2 janvier 2025, est celui que vous nous avez transmis : index 310."
    assert text_of(html, "party-alerts") == "Aucune alerte"


def test_a_prospect_without_contract_has_a_plain_view(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7000080", "Paul", "Prospect", communes["lyon"], status="prospect")
    session.commit()
    html = client.get(f"/clients/{party.id}").get_data(as_text=True)
    assert text_of(html, "contracts") == "Aucun contrat dans votre périmètre."
    assert text_of(html, "inform-last-bill") == "Aucun contrat : pas de facture."
    assert text_of(html, "inform-overdue") == "Vous n'avez aucun impayé."
    assert 'id="current-contract"' not in html


# --- History ------------------------------------------------------------------------------------

def test_the_history_merges_every_source_newest_first(client, helene, lyon_agent):
    html = client.get(f"/clients/{helene['party'].id}").get_data(as_text=True)
    history = text_of(html, "history-list")
    # Newest first: the record's creation today, then F-E-04 (1 March), the estimated reading (20 February)…
    assert history.startswith("10/03/2025 11:00 Fiche créée par test")
    assert history.index("Facture F-E-04 émise : 64,20 €") < history.index("20 févr. 2025 Relevé du compteur NEW-0002")
    assert history.index("Relevé du compteur NEW-0002 : index 345 (estimé)") \
        < history.index("Paiement reçu : 1 270,00 €") < history.index("Facture F-W-01 émise")
    assert "F-G-01" not in history and "index 900" not in history  # out of scope; the previous occupant's
    kinds = timeline_kinds(html)
    assert kinds[:4] == ["party_change", "invoice", "reading", "payment"]
    assert sorted(set(kinds)) == ["invoice", "party_change", "payment", "reading"]


def test_the_history_is_filtered_by_type(client, helene, lyon_agent):
    party_id = helene["party"].id
    html = client.get(f"/clients/{party_id}?history_type=payment").get_data(as_text=True)
    assert timeline_kinds(html) == ["payment"] * 3
    assert '<option value="payment" selected>Paiements</option>' in html
    partial = client.get(f"/clients/{party_id}/historique?history_type=reading").get_data(as_text=True)
    assert not partial.lstrip().startswith("<!doctype") and partial.lstrip().startswith('<div id="history-list"')
    assert timeline_kinds(partial) == ["reading"] * 6
    assert len(timeline_kinds(client.get(f"/clients/{party_id}/historique?history_type=bogus")
                              .get_data(as_text=True))) == 1 + 5 + 3 + 6  # unknown type: no filter
    # No source has channels yet (contacts arrive later): a channel filter leaves nothing.
    assert timeline_kinds(client.get(f"/clients/{party_id}/historique?history_channel=phone")
                          .get_data(as_text=True)) == []


def test_the_history_is_paginated_by_twenty(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7000090", "Léa", "Historique", communes["lyon"])
    contract = _contract(party, "EL-T-0090", communes["lyon"])
    for i in range(25):  # 25 invoices, one a day, and the creation of the record today: 26 events
        _invoice(contract, f"F-H-{i:02d}", issued=date(2025, 1, 1) + timedelta(days=i), due=date(2025, 6, 1),
                 amount="1.00", paid="1.00")
    session.commit()
    first = client.get(f"/clients/{party.id}").get_data(as_text=True)
    listed = re.findall(r"F-H-\d\d", text_of(first, "history-list"))
    assert len(timeline_kinds(first)) == 20 and timeline_kinds(first)[0] == "party_change"
    assert listed == [f"F-H-{i:02d}" for i in range(24, 5, -1)]
    assert f'hx-get="/clients/{party.id}/historique?history_page=2"' in first
    second = client.get(f"/clients/{party.id}/historique?history_page=2").get_data(as_text=True)
    assert re.findall(r"F-H-\d\d", text_of(second, "history-list")) == [f"F-H-{i:02d}" for i in range(5, -1, -1)]
    assert "history_page=3" not in second and "history_page=1" in second
    filtered = client.get(f"/clients/{party.id}/historique?history_page=2&history_type=invoice").get_data(as_text=True)
    assert re.findall(r"F-H-\d\d", filtered) == [f"F-H-{i:02d}" for i in range(4, -1, -1)]
    assert "history_type=invoice" in filtered  # the pager keeps the filter


def test_each_history_source_reads_only_what_the_page_needs(app_ctx, helene, communes, monkeypatch):  # noqa: F811
    asked = []
    for key, src in list(timeline.SOURCES.items()):
        def spy(agent, party_id, limit, channel, _fetch=src.fetch, _key=key):
            asked.append((_key, limit))
            return _fetch(agent, party_id, limit, channel)
        monkeypatch.setitem(timeline.SOURCES, key, timeline.Source(key=key, label=src.label, fetch=spy))
    agent = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"]])
    page = timeline.history(agent=agent, party_id=helene["party"].id, page=3, per_page=4)
    assert sorted(asked) == [("contact", 13), ("dossier", 13), ("invoice", 13), ("party_change", 13), ("payment", 13),
                             ("reading", 13)]
    assert len(page.events) == 4 and page.has_next  # 15 events: 8 before, 4 here, 3 after
    asked.clear()
    assert len(timeline.history(agent=agent, party_id=helene["party"].id, page=4, per_page=4).events) == 3
    assert not timeline.history(agent=agent, party_id=helene["party"].id, page=4, per_page=4).has_next
    assert timeline.history(agent=agent, party_id=helene["party"].id, page=10**6).page == timeline.MAX_PAGE


# --- No N+1 -------------------------------------------------------------------------------------

def _heavy_customer(territory) -> Party:
    """10 contracts, 500 invoices (50 each, most paid), their payments, 24 readings per meter."""
    party = _party("CL7000200", "Multi", "Contrats", territory)
    start = date(2020, 1, 15)
    for c in range(10):
        contract = _contract(party, f"EL-H-{c:03d}", territory, start=start)
        meter = _meter(contract, f"H-M-{c}", start)
        for r in range(24):
            _reading(contract, meter, start + timedelta(days=30 * r), 100 + 9 * r,
                     kind="estimated" if r % 3 else "actual")
        for i in range(50):
            issued = start + timedelta(days=20 * i)
            invoice = _invoice(contract, f"F-H-{c}-{i}", issued=issued, due=issued + timedelta(days=15),
                               amount="42.50", paid="42.50" if i < 47 else "0")
            if i < 47:
                _payment(invoice, paid_on=issued + timedelta(days=10), amount="42.50", method="prelevement")
    return party


def _light_customer(territory) -> Party:
    party = _party("CL7000100", "Une", "Seule", territory)
    contract = _contract(party, "EL-L-001", territory, start=date(2023, 1, 1))
    meter = _meter(contract, "L-M-1", date(2023, 1, 1))
    _reading(contract, meter, date(2024, 1, 1), 10)
    _reading(contract, meter, date(2024, 7, 1), 90, kind="estimated")
    invoice = _invoice(contract, "F-L-1", issued=date(2024, 7, 5), due=date(2024, 7, 20), amount="30.00", paid="30.00")
    _payment(invoice, paid_on=date(2024, 7, 15), amount="30.00")
    _invoice(contract, "F-L-2", issued=date(2025, 1, 5), due=date(2025, 1, 20), amount="31.00")
    return party


def test_the_page_sends_as_many_statements_for_1_contract_as_for_10_contracts_and_500_invoices(
        client, lyon_agent, communes, today):  # noqa: F811
    light, heavy = _light_customer(communes["lyon"]), _heavy_customer(communes["lyon"])
    session.commit()

    def statements_for(party: Party) -> list[str]:
        url = f"/clients/{party.id}"  # read before listening: the test's own session reloads party
        response, sent = statements_sent(client, url)  # after a warm-up: the current contract is remembered
        assert response.status_code == 200
        return sent

    light_statements, heavy_statements = statements_for(light), statements_for(heavy)
    print(f"\n360° view: {len(light_statements)} statements for 1 contract, "
          f"{len(heavy_statements)} for 10 contracts and 500 invoices")
    assert len(light_statements) == len(heavy_statements)
    assert 10 < len(light_statements) < 45  # the listener does see the page's reads
    html = client.get(f"/clients/{heavy.id}").get_data(as_text=True)
    assert html.count('hx-select="#party-view"') == 9  # the ten tabs: nine links and the current one
    assert text_of(html, "alert-overdue").startswith("Impayé : 1 275,00 € en retard")  # 30 unpaid invoices


def test_a_reading_on_the_day_a_contract_is_renewed_appears_once(client, lyon_agent, communes, today):  # noqa: F811
    party = _party("CL7100001", "René", "Renouvelé", communes["lyon"])
    first = _contract(party, "EL-R-1", communes["lyon"], status="terminated", start=date(2020, 1, 1),
                      end=date(2023, 1, 1))
    second = _contract(party, "EL-R-2", communes["lyon"], start=date(2023, 1, 1))
    second.service_point = first.service_point  # renewed at the same premises
    session.flush()
    _reading(first, _meter(first, "R-M-1", date(2019, 1, 1)), date(2023, 1, 1), 500)  # read on the handover day
    session.commit()
    html = client.get(f"/clients/{party.id}/historique?history_type=reading").get_data(as_text=True)
    assert timeline_kinds(html) == ["reading"]


def test_an_owner_is_not_told_the_payers_debt(client, lyon_agent, communes, today):  # noqa: F811
    owner = _party("CL7100002", "Paul", "Proprio", communes["lyon"])
    tenant = _party("CL7100003", "Tina", "Locataire", communes["lyon"])
    contract = _contract(tenant, "EA-O-1", communes["lyon"], kind="water")
    contract.parties.append(ContractParty(party=owner, role="owner"))
    _invoice(contract, "F-O-1", issued=date(2025, 1, 1), due=date(2025, 1, 15), amount="250.00")
    session.commit()
    assert text_of(client.get(f"/clients/{owner.id}").get_data(as_text=True), "alert-overdue") is None
    assert "250,00" in text_of(client.get(f"/clients/{tenant.id}").get_data(as_text=True), "alert-overdue")

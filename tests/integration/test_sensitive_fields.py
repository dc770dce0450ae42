"""Sensitive fields (GDPR: bank details, birth date, vulnerability) leave the server in full only for
an agent holding party.sensitive (app.parties.sensitive): the 360° view, the edit form and its
conflict report, the advanced search and its CSV export, letters and mails, the API. IBAN/BIC are
validated; a refusal writes nothing. Every full view of a customer page is logged
(app.parties.consultations), its htmx fragments are not.

Each check runs for an agent without the permission (accueil: the value is absent) and one with it
(back_office: the value is there), so that a check that could never fail is caught."""
from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from sqlalchemy import func, select

from app.api import tokens
from app.db import session
from app.documents import rendering
from app.documents import service as documents
from app.documents import templates as registry
from app.documents.context import sample as letter_sample
from app.mails import service as mails
from app.parties import consultations, editing, sensitive
from app.parties.models import Party, PartyConsultation
from app.search import advanced
from tests.factories import AgentFactory, role_with
from tests.integration.test_documents import docx_text, letters_fixture  # noqa: F401  (fixture)
from tests.integration.test_party_edit import _form
from tests.integration.test_process_instances import world_fixture  # noqa: F401  (fixture)
from tests.unit.test_document_rendering import template

IBAN = "FR7630006000011234567890189"
IBAN_PRINTED = "FR76 3000 6000 0112 3456 7890 189"
BIC = "AGRIFRPP882"
BIRTH = date(1980, 5, 4)
BIRTH_TEXTS = ("1980-05-04", "04/05/1980", "4 mai 1980")
ROLES = [("accueil", False), ("back_office", True)]


def _secrets_in(text: str) -> dict[str, bool]:
    """Which sensitive values the text shows, in any of their usual spellings."""
    return {"iban": IBAN in text or IBAN_PRINTED in text, "bic": BIC in text,
            "birth_date": any(t in text for t in BIRTH_TEXTS)}


def _all(shown: bool) -> dict[str, bool]:
    return {"iban": shown, "bic": shown, "birth_date": shown}


@pytest.fixture
def helene(customer):
    """The customer fixture with a birth date, bank details and the vulnerability flag."""
    customer.birth_date, customer.iban, customer.bic, customer.vulnerable = BIRTH, IBAN, BIC, True
    session.commit()
    return customer


def _login(login_as, places, role: str):
    return login_as(role, territories=[places["lyon_agency"]])


def _consultations(party_id: int) -> int:
    return session.execute(select(func.count()).select_from(PartyConsultation)
                           .where(PartyConsultation.party_id == party_id)).scalar_one()


# --- the rules themselves ---------------------------------------------------------------------

def test_the_masks_keep_nothing_of_the_value_but_the_iban_country_and_end(app_ctx):
    assert sensitive.mask_iban(IBAN) == "FR76 •••• •••• •••• •••• ••• 0189"
    assert sensitive.mask_bic(BIC) == "•" * 11
    assert sensitive.display("birth_date", BIRTH, allowed=False) == "•• / •• / ••••"
    assert sensitive.display("vulnerable", True, allowed=False) == "masqué"
    assert sensitive.display("iban", IBAN, allowed=True) == IBAN_PRINTED
    assert not sensitive.may_see(None)  # a scheduled job
    assert sensitive.may_see(AgentFactory(roles=[role_with("back_office")]))
    assert not sensitive.may_see(AgentFactory(roles=[role_with("accueil")]))


@pytest.mark.parametrize(("typed", "stored"), [
    ("fr76 3000 6000 0112 3456 7890 189", IBAN), ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("", None), ("  ", None)])
def test_an_iban_is_stored_upper_case_without_spaces(app_ctx, typed, stored):
    assert sensitive.normalise_iban(typed) == stored


@pytest.mark.parametrize(("typed", "message"), [
    ("FR7630006000011234567890188", "IBAN invalide : la clé de contrôle ne correspond pas (vérifiez la saisie)."),
    ("FR76300060000112345678901", "IBAN invalide : 27 caractères attendus pour ce pays (25 saisis)."),
    ("1234", "IBAN invalide : deux lettres du pays"),
])
def test_a_wrong_iban_is_refused_with_a_french_message(app_ctx, typed, message):
    with pytest.raises(Exception) as refused:
        sensitive.normalise_iban(typed)
    assert str(refused.value).startswith(message)
    assert typed not in str(refused.value)  # the message never repeats the (sensitive) value


def test_a_bic_has_8_or_11_characters(app_ctx):
    assert sensitive.normalise_bic("agri fr pp") == "AGRIFRPP"
    assert sensitive.normalise_bic("AGRIFRPP882") == "AGRIFRPP882"
    for wrong in ("AGRIFRP", "AGRIFRPP88", "1GRIFRPP"):
        with pytest.raises(Exception, match="BIC invalide"):
            sensitive.normalise_bic(wrong)


# --- 360° view --------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "allowed"), ROLES)
def test_the_customer_view_shows_sensitive_values_only_with_the_permission(client, login_as, places, helene,
                                                                           role, allowed):
    _login(login_as, places, role)
    html = client.get(f"/clients/{helene.id}").get_data(as_text=True)
    assert _secrets_in(html) == _all(allowed)
    assert ('id="alert-vulnerable"' in html) is allowed
    assert 'id="party-bank"' in html  # the bank details are there, masked or not
    if allowed:
        assert "4 mai 1980" in html and IBAN_PRINTED in html
    else:
        assert "FR76 •••• •••• •••• •••• ••• 0189" in html and "•• / •• / ••••" in html


# --- consultation log -------------------------------------------------------------------------

def test_each_view_is_logged_whatever_its_headers(client, login_as, places, helene, frozen_clock):
    frozen_clock.current = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    agent = _login(login_as, places, "accueil")
    assert _consultations(helene.id) == 0
    assert client.get(f"/clients/{helene.id}").status_code == 200
    assert _consultations(helene.id) == 1
    frozen_clock.advance(minutes=5)
    # A tab swapped in by htmx is a view too: a client choosing its headers cannot read unlogged.
    assert client.get(f"/clients/{helene.id}", headers={"HX-Request": "true"}).status_code == 200
    assert client.get(f"/clients/{helene.id}/historique").status_code == 200  # its history, paged alone
    rows = consultations.consultations_of(helene.id)
    assert [(r.login, r.full_name, r.consulted_at) for r in rows] == [
        (agent.login, agent.full_name, datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),
        (agent.login, agent.full_name, datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),
        (agent.login, agent.full_name, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))]
    assert len(consultations.consultations_of(helene.id, limit=1)) == 1


def test_a_view_refused_out_of_scope_is_not_logged(client, login_as, places, helene):
    login_as("accueil", territories=[places["loire_agency"]])
    assert client.get(f"/clients/{helene.id}").status_code == 404
    assert _consultations(helene.id) == 0


# --- edit form --------------------------------------------------------------------------------

def _edit(party: Party) -> str:
    return f"/clients/{party.id}/modifier"


@pytest.mark.parametrize(("role", "allowed"), ROLES)
def test_the_edit_form_carries_sensitive_fields_only_with_the_permission(client, login_as, places, helene,
                                                                         role, allowed):
    _login(login_as, places, role)
    page = client.get(_edit(helene)).get_data(as_text=True)
    assert _secrets_in(unescape(page)) == _all(allowed)  # the "original" snapshot included
    for name in ("iban", "bic", "birth_date"):
        assert (f'name="{name}"' in page) is allowed


def test_an_agent_without_the_permission_posting_sensitive_fields_is_refused(client, login_as, places, helene):
    _login(login_as, places, "accueil")
    page = client.get(_edit(helene)).get_data(as_text=True)
    version = helene.version
    response = client.post(_edit(helene), data=_form(page, first_name="Hélène-Marie", iban="DE89370400440532013000",
                                                     birth_date="1990-01-01"))
    assert response.status_code == 422
    assert "Vous n&#39;êtes pas habilité" in response.get_data(as_text=True) or \
        "Vous n'êtes pas habilité" in unescape(response.get_data(as_text=True))
    session.expire_all()
    stored = session.get(Party, helene.id)
    assert (stored.first_name, stored.iban, stored.birth_date, stored.version) == ("Hélène", IBAN, BIRTH, version)
    # The service refuses it too, whoever calls it.
    agent = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]])
    with pytest.raises(editing.InvalidChanges) as refused:
        editing.update_party(agent=agent, party_id=helene.id, expected_version=version, changes={"bic": "BNPAFRPP"})
    assert set(refused.value.errors) == {"bic"}


def test_an_agent_with_the_permission_sets_valid_bank_details(client, login_as, places, helene):
    _login(login_as, places, "back_office")
    page = client.get(_edit(helene)).get_data(as_text=True)
    response = client.post(_edit(helene), data=_form(page, iban="de89 3704 0044 0532 0130 00", bic="cobadeffxxx"))
    assert response.status_code == 302, response.get_data(as_text=True)
    session.expire_all()
    stored = session.get(Party, helene.id)
    assert (stored.iban, stored.bic, stored.birth_date) == ("DE89370400440532013000", "COBADEFFXXX", BIRTH)


def test_a_form_read_before_the_bank_fields_existed_keeps_the_stored_ones(client, login_as, places, helene):
    _login(login_as, places, "back_office")
    data = _form(client.get(_edit(helene)).get_data(as_text=True), first_name="Hélène-Marie")
    original = json.loads(data["original"])
    for key in ("iban", "bic"):
        del data[key], original[key]
    data["original"] = json.dumps(original)
    assert client.post(_edit(helene), data=data).status_code == 302
    session.expire_all()
    stored = session.get(Party, helene.id)
    assert (stored.first_name, stored.iban, stored.bic) == ("Hélène-Marie", IBAN, BIC)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"iban": "FR7630006000011234567890188"}, "iban", "la clé de contrôle ne correspond pas"),
    ({"iban": "FR76 3000"}, "iban", "IBAN invalide"),
    ({"bic": "AGRI"}, "bic", "BIC invalide"),
])
def test_a_wrong_iban_or_bic_is_refused_and_nothing_is_written(client, login_as, places, helene, changes, field,
                                                               message):
    _login(login_as, places, "back_office")
    page = client.get(_edit(helene)).get_data(as_text=True)
    before = (helene.version, helene.iban, helene.bic, helene.first_name)
    response = client.post(_edit(helene), data=_form(page, first_name="Hélène-Marie", **changes))
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert re.search(rf'name="{field}"[^>]*>\s*<small class="field-error">[^<]*{re.escape(message)}', html), html
    session.expire_all()
    stored = session.get(Party, helene.id)
    assert (stored.version, stored.iban, stored.bic, stored.first_name) == before


@pytest.mark.parametrize(("role", "allowed"), ROLES)
def test_the_conflict_report_masks_sensitive_changes_without_the_permission(client, login_as, places, helene,
                                                                            role, allowed):
    _login(login_as, places, role)
    page = client.get(_edit(helene)).get_data(as_text=True)
    # Meanwhile a back-office colleague changes the bank details and the birth date.
    colleague = AgentFactory(roles=[role_with("back_office")], territories=[places["lyon_agency"]])
    editing.update_party(agent=colleague, party_id=helene.id, expected_version=helene.version,
                         changes={"iban": "DE89370400440532013000", "birth_date": "1975-07-14"})
    session.commit()
    response = client.post(_edit(helene), data=_form(page, first_name="Hélène-Marie"))
    assert response.status_code == 409
    report = unescape(response.get_data(as_text=True).split('id="edit-conflict"', 1)[1].split("</article>", 1)[0])
    assert ("DE89 3704 0044 0532 0130 00" in report) is allowed
    assert (IBAN_PRINTED in report) is allowed
    assert ("14/07/1975" in report) is allowed
    if not allowed:
        assert f"IBAN : {sensitive.mask_iban(IBAN)} → {sensitive.mask_iban('DE89370400440532013000')}" in report
        assert "date de naissance : •• / •• / •••• → •• / •• / ••••" in report


# --- advanced search and export ------------------------------------------------------------------

@pytest.mark.parametrize(("role", "allowed"), ROLES)
def test_the_birth_date_criterion_is_offered_and_accepted_only_with_the_permission(client, login_as, places, helene,
                                                                                  role, allowed):
    _login(login_as, places, role)
    form = client.get("/recherche/avancee/").get_data(as_text=True)
    assert ('name="birth_date"' in form) is allowed
    html = unescape(client.get("/recherche/avancee/", query_string={"birth_date": "04/05/1980"})
                    .get_data(as_text=True))
    assert ("CL0700001" in html) is allowed  # found by birth date only with the permission
    assert ("La recherche par date de naissance est réservée" in html) is not allowed
    listed = client.get("/recherche/avancee/", query_string={"name": "Lefèvre"}).get_data(as_text=True)
    assert "CL0700001" in listed
    assert ("4 mai 1980" in listed) is allowed


def test_the_search_service_refuses_a_birth_date_criterion_without_the_permission(app_ctx, places, helene):
    accueil = AgentFactory(roles=[role_with("accueil")], territories=[places["lyon_agency"]])
    with pytest.raises(Exception, match="date de naissance est réservée"):
        advanced.search(agent=accueil, criteria=advanced.Criteria(birth_date=BIRTH))


@pytest.mark.parametrize(("permissions", "allowed"), [
    (["party.read", "party.export"], False), (["party.read", "party.export", "party.sensitive"], True)])
def test_the_csv_export_masks_the_birth_date_without_the_permission(client, login_as, places, helene, permissions,
                                                                    allowed):
    login_as(f"exporter_{len(permissions)}", permissions=permissions, territories=[places["lyon_agency"]])
    response = client.get("/recherche/avancee/export.csv", query_string={"name": "Lefèvre"})
    assert response.status_code == 200
    csv_text = response.get_data(as_text=True)
    assert "CL0700001" in csv_text
    assert ("04/05/1980" in csv_text) is allowed
    assert ("•• / •• / ••••" in csv_text) is not allowed
    assert IBAN not in csv_text  # bank details are never exported


# --- letters and mails ------------------------------------------------------------------------------

BANK_LETTER = ("Client {{ customer.name }}", "Né(e) le {{ customer.birth_date }}",
               "IBAN {{ customer.iban }} BIC {{ customer.bic }}")


@pytest.fixture
def bank_letter(letters):  # noqa: F811
    letters.helene.birth_date, letters.helene.iban, letters.helene.bic = BIRTH, IBAN, BIC
    registry.add_letter(code="bank_details", label="Coordonnées bancaires", docx=template(*BANK_LETTER))
    registry.add_mail(code="bank_details_mail", label="Coordonnées bancaires",
                      subject="Vos coordonnées {{ customer.number }}",
                      body="Né(e) le {{ customer.birth_date }}\nIBAN {{ customer.iban }} BIC {{ customer.bic }}")
    session.commit()
    return letters


def test_a_letter_never_holds_sensitive_values_in_full_whoever_writes_it(bank_letter):
    """A letter is kept in the dossier, whose readers need not hold party.sensitive: masked for all."""
    dossier = bank_letter.dossier
    for agent in (bank_letter.agent, bank_letter.colleague, None):  # without, with the permission; a job
        prepared = (documents.prepare_for_agent(agent=agent, dossier=dossier, template_code="bank_details")
                    if agent else documents.prepare(dossier=dossier, template_code="bank_details", agent=None))
        text = docx_text(prepared.docx)
        assert "Hélène Lefèvre" in text
        assert not any(_secrets_in(text).values())
        assert "4 mai 1980" not in text
        assert "FR76 •••• •••• •••• •••• ••• 0189" in text and "•• / •• / ••••" in text


def test_a_kept_letter_read_by_an_agent_without_the_permission_shows_no_sensitive_value(bank_letter):
    """The reviewer's case: a colleague holding party.sensitive generates and keeps the letter; an
    agent without it downloads it from the dossier."""
    dossier = bank_letter.dossier
    letter = documents.generate(dossier=dossier, template_code="bank_details", agent=bank_letter.colleague,
                                convert=False)
    session.commit()
    stored = documents.download(agent=bank_letter.agent, element_id=letter.id)
    assert stored is not None  # the agent reads the dossier, so the letter
    text = docx_text(stored.content)
    assert not any(_secrets_in(text).values()) and "4 mai 1980" not in text


def test_a_mail_never_holds_sensitive_values_in_full_whoever_writes_it(bank_letter):
    dossier = bank_letter.dossier
    for agent in (bank_letter.agent, bank_letter.colleague):
        subject, body = mails.draft(agent=agent, dossier=dossier, template_code="bank_details_mail")
        assert bank_letter.helene.number in subject
        assert (IBAN_PRINTED in body, BIC in body, "4 mai 1980" in body) == (False, False, False)
        assert "•• / •• / ••••" in body
    context = documents.letter_context(dossier, None)  # a job's mail
    subject, body = mails.render_template(mails.mail_template("bank_details_mail"), context)
    assert IBAN_PRINTED not in body and BIC not in body and "4 mai 1980" not in body


def test_the_template_check_knows_the_sensitive_fields(app_ctx):
    rendering.check(template(*BANK_LETTER), letter_sample())


# --- API ------------------------------------------------------------------------------------------

def test_the_api_never_carries_sensitive_values(client, places, helene):
    """No API permission grants party.sensitive: even for an agent who holds it, masked (absent)."""
    _token, plaintext = tokens.create_token(system="Téléphonie", permissions=["identify"],
                                            territory_codes=[places["region"].code], created_by=None)
    back_office = AgentFactory(roles=[role_with("back_office")], territories=[places["lyon_agency"]])
    session.commit()
    response = client.get("/api/v1/identify", query_string={"phone": "0612345678", "agent": back_office.login},
                          headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "CL0700001" in body  # the customer is there
    assert not any(_secrets_in(body).values())
    assert "vulnerable" not in body

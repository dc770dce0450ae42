"""The API for other systems: tokens (stored as digests, revocable, scoped, bound to territories),
caller identification in the named agent's scope within the token's territories, the
administration pages and the command line."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date

import pytest
from sqlalchemy import func, select, text

from app.api import tokens
from app.api.models import ApiToken, api_token_territory
from app.audit.models import AuditEntry
from app.contracts.models import Contract, ContractParty
from app.db import session
from app.errors import BusinessError
from app.integration.billing_import import import_directory
from app.parties.models import Party, PartyPhone
from tests.conftest import csrf_token
from tests.factories import AgentFactory, TerritoryFactory, role_with
from tests.integration.test_billing_import import EXAMPLE, communes  # noqa: F401  (fixture)

URL = "/api/v1/identify"
TOKEN_RE = re.compile(r"gch_[A-Za-z0-9_-]{40,}")


def _new_token(*permissions: str, system: str = "Téléphonie", territories=("R",)) -> str:
    """A token over these territory codes (by default the region of both agencies of `communes`)."""
    _token, plaintext = tokens.create_token(system=system, permissions=list(permissions or ["identify"]),
                                            territory_codes=list(territories), created_by=None)
    session.commit()
    return plaintext


def _bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


def _token_row(plaintext: str) -> ApiToken:
    return session.execute(select(ApiToken).where(ApiToken.prefix == plaintext[:12])).scalar_one()


def _audit_count() -> int:
    return session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def _token_count() -> int:
    return session.execute(select(func.count()).select_from(ApiToken)).scalar_one()


def _token_territory_count() -> int:
    return session.execute(select(func.count()).select_from(api_token_territory)).scalar_one()


def _territory_codes(plaintext: str) -> list[str]:
    return [t.code for t in _token_row(plaintext).territories]


@pytest.fixture
def data(communes):  # noqa: F811
    """The example customers, plus the Nice bakery as a second owner of Mme Lefèvre's mobile."""
    assert import_directory(EXAMPLE).ok
    parties = dict(session.execute(select(Party.number, Party.id)).all())
    session.add(PartyPhone(party_id=parties["CL0001003"], number="+33612345678", label="mobile", position=9))
    session.commit()
    lyon = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon_agency"]])
    nice = AgentFactory(roles=[role_with("accueil")], territories=[communes["nice_agency"]])
    return {**communes, "parties": parties, "lyon": lyon, "nice": nice}  # agents, not communes


@pytest.fixture
def token(communes):  # noqa: F811
    """A token over the whole region: both agencies."""
    return _new_token("identify")


def _identify(client, token, phone="06 12 34 56 78", agent=None, **params):
    query = {"phone": phone, **params}
    if agent is not None:
        query["agent"] = agent.login if hasattr(agent, "login") else agent
    return client.get(URL, query_string=query, headers=_bearer(token))


# --- tokens ------------------------------------------------------------------------------------

def test_a_token_is_stored_only_as_its_digest(app_ctx, communes):  # noqa: F811
    token, plaintext = tokens.create_token(system="  Téléphonie   Lyon ", permissions=["identify"],
                                           territory_codes=[" AG-N", "AG-L", "AG-L"], created_by=None)
    session.commit()
    assert TOKEN_RE.fullmatch(plaintext)
    assert token.system == "Téléphonie Lyon" and token.permission_codes == ["identify"]
    assert [t.code for t in token.territories] == ["AG-L", "AG-N"]
    assert token.digest == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.prefix == plaintext[:12] and len(plaintext) > 40
    row = session.execute(text("SELECT * FROM api_token WHERE id = :id"), {"id": token.id}).mappings().one()
    assert plaintext not in json.dumps({k: str(v) for k, v in row.items()})
    entries = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token",
                                                       AuditEntry.object_id == str(token.id))).scalars().all()
    assert [e.action for e in entries] == ["create"]
    assert plaintext not in json.dumps(entries[0].changes) and "digest" not in entries[0].changes
    assert entries[0].changes["territories"] == [[], ["AG-L", "AG-N"]]
    assert _new_token() != _new_token()  # random every time


def test_authenticate_accepts_the_token_only_while_active(app_ctx, communes):  # noqa: F811
    plaintext = _new_token()
    row = _token_row(plaintext)
    assert tokens.authenticate(plaintext) is row
    for wrong in ["", None, plaintext[:-1], plaintext + "x", plaintext.upper(), row.digest, row.prefix,
                  "gch_" + "A" * 500]:
        assert tokens.authenticate(wrong) is None
    tokens.revoke(token_id=row.id)
    assert tokens.authenticate(plaintext) is None
    with pytest.raises(BusinessError, match="déjà révoqué"):
        tokens.revoke(token_id=row.id)
    with pytest.raises(BusinessError, match="Jeton inconnu"):
        tokens.revoke(token_id=row.id + 1000)


def test_last_use_is_written_at_most_once_a_minute(app_ctx, communes, frozen_clock):  # noqa: F811
    plaintext = _new_token()
    first = frozen_clock.now()
    assert tokens.authenticate(plaintext).last_used_at == first
    frozen_clock.advance(seconds=59)
    assert tokens.authenticate(plaintext).last_used_at == first
    frozen_clock.advance(seconds=1)
    assert tokens.authenticate(plaintext).last_used_at == frozen_clock.now()


@pytest.mark.parametrize("system,permissions,territories,field,message", [
    ("", ["identify"], ["AG-L"], "system", "Le nom du système est obligatoire."),
    ("  \t ", ["identify"], ["AG-L"], "system", "Le nom du système est obligatoire."),
    ("x" * 101, ["identify"], ["AG-L"], "system", "ne doit pas dépasser 100 caractères"),
    ("Téléphonie", [], ["AG-L"], "permissions", "au moins une permission"),
    ("Téléphonie", ["identify", "admin.agents"], ["AG-L"], "permissions", "Permission d'API inconnue : admin.agents"),
    ("Téléphonie", ["identify"], [], "territories", "Choisissez au moins un territoire pour ce jeton"),
    ("Téléphonie", ["identify"], ["", "  "], "territories", "Choisissez au moins un territoire pour ce jeton"),
    ("Téléphonie", ["identify"], ["AG-L", "AG-PARIS", "ZZ"], "territories", "Territoire inconnu : AG-PARIS, ZZ"),
])
def test_token_creation_refuses_bad_input(app_ctx, communes, system, permissions, territories,  # noqa: F811
                                          field, message):
    audit_before = _audit_count()
    with pytest.raises(BusinessError, match=re.escape(message)) as refused:
        tokens.create_token(system=system, permissions=permissions, territory_codes=territories, created_by=None)
    assert refused.value.field == field
    assert _token_count() == 0 and _token_territory_count() == 0 and _audit_count() == audit_before


def test_a_tokens_territories_can_be_changed_and_the_change_is_audited(app_ctx, communes):  # noqa: F811
    plaintext = _new_token(territories=["AG-L"])
    row = _token_row(plaintext)
    assert tokens.set_territories(token_id=row.id, territory_codes=["AG-N", "69123"]) is row
    session.commit()
    session.expire_all()
    assert _territory_codes(plaintext) == ["69123", "AG-N"]  # in tree order
    entries = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token",
                                                       AuditEntry.object_id == str(row.id))
                              .order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].changes == {"territories": [["AG-L"], ["69123", "AG-N"]]}


@pytest.mark.parametrize("codes,message", [
    ([], "Choisissez au moins un territoire pour ce jeton"),
    (["AG-N", "nowhere"], "Territoire inconnu : nowhere"),
])
def test_changing_territories_refuses_bad_input_and_changes_nothing(app_ctx, communes, codes, message):  # noqa: F811
    plaintext = _new_token(territories=["AG-L"])
    before = _audit_count()
    with pytest.raises(BusinessError, match=re.escape(message)):
        tokens.set_territories(token_id=_token_row(plaintext).id, territory_codes=codes)
    session.rollback()
    assert _territory_codes(plaintext) == ["AG-L"] and _audit_count() == before


def test_a_revoked_or_unknown_tokens_territories_cannot_change(app_ctx, communes):  # noqa: F811
    row = _token_row(_new_token(territories=["AG-L"]))
    tokens.revoke(token_id=row.id)
    with pytest.raises(BusinessError, match="révoqué"):
        tokens.set_territories(token_id=row.id, territory_codes=["AG-N"])
    assert [t.code for t in row.territories] == ["AG-L"]
    with pytest.raises(BusinessError, match="Jeton inconnu"):
        tokens.set_territories(token_id=row.id + 1000, territory_codes=["AG-N"])


# --- authentication of API calls -----------------------------------------------------------------

def _assert_json_error(response, status: int, fragment: str = "") -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    message = response.get_json()["error"]
    assert fragment in message
    return message


def test_a_call_without_a_token_is_refused(client, data):
    response = client.get(URL, query_string={"phone": "0612345678", "agent": data["lyon"].login})
    _assert_json_error(response, 401, "Authorization: Bearer")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer gch_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "gch_x"])
def test_a_wrong_token_is_refused(client, data, header):
    response = client.get(URL, query_string={"phone": "0612345678", "agent": data["lyon"].login},
                          headers={"Authorization": header})
    _assert_json_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_in_the_query_string_is_refused(client, data, token):
    for name in ("access_token", "token"):
        response = client.get(URL, query_string={"phone": "0612345678", "agent": data["lyon"].login, name: token})
        _assert_json_error(response, 401, "jamais dans l'URL")


def test_a_revoked_token_is_refused(client, data, token):
    assert _identify(client, token, agent=data["lyon"]).status_code == 200
    tokens.revoke(token_id=_token_row(token).id)
    session.commit()
    _assert_json_error(_identify(client, token, agent=data["lyon"]), 401, "invalide ou révoqué")


def test_a_browser_session_does_not_open_the_api(client, login_as, data):
    login_as("admin", territories=[data["lyon_agency"]])
    response = client.get(URL, query_string={"phone": "0612345678", "agent": data["lyon"].login})
    _assert_json_error(response, 401)


def test_a_token_without_the_permission_gets_403(client, data, monkeypatch):
    monkeypatch.setitem(tokens.API_PERMISSIONS, "billing.read", "Lire la facturation")
    other = _new_token("billing.read")
    _assert_json_error(_identify(client, other, agent=data["lyon"]), 403, "identify")


def test_api_errors_are_json(client, token):
    _assert_json_error(client.post(URL, headers=_bearer(token)), 405)
    _assert_json_error(client.get("/api/v1/nothing-here", headers=_bearer(token)), 404)
    _assert_json_error(client.get("/api/v1/nothing-here"), 404)  # a path is no secret; data are
    for path in ("/api/v1", "/api/v1/"):  # the prefix itself: no login page, no redirect
        _assert_json_error(client.get(path), 404)


# --- caller identification -----------------------------------------------------------------------

def test_identify_answers_within_the_named_agents_scope(client, data, token):
    lyon_id, nice_id = data["parties"]["CL0001001"], data["parties"]["CL0001003"]
    response = _identify(client, token, agent=data["lyon"])
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body == {
        "phone": "+33612345678",
        "channel": "phone",
        "parties": [{
            "id": lyon_id,
            "number": "CL0001001",
            "name": "Mme Hélène Lefèvre",
            "kind": "person",
            "status": "customer",
            "address": ["12 rue Victor-Hugo", "Bât. B", "69002 Lyon"],
            "main_contract": {"number": "EL-2019-000311", "status": "active", "offer": "Électricité Base 6 kVA",
                              "kind": "electricity"},
            "url": f"http://localhost/clients/{lyon_id}?channel=phone",
        }],
        "out_of_scope": 1,  # the Nice bakery: counted, never shown
    }
    raw = response.get_data(as_text=True)
    for secret in ("Boulangerie", "CL0001003", "Jean-Médecin", "06000", f"/clients/{nice_id}"):
        assert secret not in raw

    body = _identify(client, token, agent=data["nice"]).get_json()
    assert [p["id"] for p in body["parties"]] == [nice_id] and body["out_of_scope"] == 1
    assert "Lefèvre" not in json.dumps(body, ensure_ascii=False) and "CL0001001" not in json.dumps(body)


@pytest.mark.parametrize("phone", ["06 12 34 56 78", "+33612345678", "0033612345678", "06.12.34.56.78",
                                   "+33 (0)6 12 34 56 78"])
def test_every_format_of_the_number_gives_the_same_answer(client, data, token, phone):
    expected = _identify(client, token, phone="0612345678", agent=data["lyon"]).get_json()
    assert expected["parties"]
    assert _identify(client, token, phone=phone, agent=data["lyon"]).get_json() == expected


def test_the_agent_login_is_case_insensitive(client, data, token):
    body = _identify(client, token, agent=data["lyon"].login.upper()).get_json()
    assert [p["number"] for p in body["parties"]] == ["CL0001001"]


def test_an_unknown_number_gives_an_empty_answer(client, data, token):
    body = _identify(client, token, phone="01 23 45 67 89", agent=data["lyon"]).get_json()
    assert body == {"phone": "+33123456789", "channel": "phone", "parties": [], "out_of_scope": 0}


def test_an_agent_without_party_read_sees_nobody(client, data, token):
    clerk = AgentFactory(roles=[role_with("sans_lecture", ["contact.create"])], territories=[data["lyon_agency"]])
    body = _identify(client, token, agent=clerk).get_json()
    assert body["parties"] == [] and body["out_of_scope"] == 2


@pytest.mark.parametrize("params,status,fragment", [
    ({"phone": ""}, 422, "« phone »"),
    ({"phone": "   "}, 422, "« phone »"),
    ({"phone": "abc"}, 422, "abc"),
    ({"phone": "%"}, 422, "Numéro de téléphone"),
    ({"phone": "06 12"}, 422, "Numéro de téléphone"),
    ({"phone": "9" * 500}, 422, "Numéro de téléphone"),
    ({"phone": "' OR 1=1 --"}, 422, "Numéro de téléphone"),
    ({"agent": ""}, 422, "« agent »"),
    ({"agent": "personne"}, 404, "Agent inconnu"),
    ({"agent": "x" * 500}, 404, "Agent inconnu"),
    ({"agent": "%"}, 404, "Agent inconnu"),
])
def test_bad_input_gets_a_clear_json_refusal(client, data, token, params, status, fragment):
    query = {"phone": "0612345678", "agent": data["lyon"].login, **params}
    _assert_json_error(client.get(URL, query_string=query, headers=_bearer(token)), status, fragment)


def test_a_missing_phone_parameter_is_422_naming_the_field(client, data, token):
    response = client.get(URL, query_string={"agent": data["lyon"].login}, headers=_bearer(token))
    _assert_json_error(response, 422, "« phone »")
    assert list(response.get_json()["fields"]) == ["phone"]


def test_an_inactive_agent_is_unknown(client, data, token):
    data["lyon"].active = False
    session.commit()
    _assert_json_error(_identify(client, token, agent=data["lyon"]), 404, "Agent inconnu")


# --- the token's territories ---------------------------------------------------------------------

REFUSED_AGENT = {"error": "Agent inconnu ou hors du périmètre de ce jeton.", "fields": {}}


@pytest.fixture
def lyon_token(data):
    """A token given to the Lyon agency's telephony."""
    return _new_token(system="Téléphonie Lyon", territories=["AG-L"])


def _refusal(response) -> tuple:
    return response.status_code, response.headers["Content-Type"], response.get_data()


def test_a_token_answers_for_the_agents_of_its_territories_only(client, data, lyon_token):
    body = _identify(client, lyon_token, agent=data["lyon"]).get_json()
    assert [p["number"] for p in body["parties"]] == ["CL0001001"] and body["out_of_scope"] == 1

    refused = _identify(client, lyon_token, agent=data["nice"])  # a Nice agent: not this token's business
    assert refused.status_code == 404 and refused.get_json() == REFUSED_AGENT
    raw = refused.get_data(as_text=True)
    for secret in ("Boulangerie", "CL0001003", "Lefèvre", "CL0001001", data["nice"].login):
        assert secret not in raw
    # The Nice telephony's token is the mirror image.
    nice_token = _new_token(system="Téléphonie Nice", territories=["AG-N"])
    assert [p["number"] for p in _identify(client, nice_token, agent=data["nice"]).get_json()["parties"]] \
        == ["CL0001003"]
    assert _identify(client, nice_token, agent=data["lyon"]).get_json() == REFUSED_AGENT


def test_unknown_inactive_and_out_of_territory_agents_get_the_same_answer(client, data, lyon_token):
    inactive = AgentFactory(roles=[role_with("accueil")], territories=[data["lyon_agency"]], active=False)
    without_territory = AgentFactory(roles=[role_with("accueil")], territories=[])
    look_alike = AgentFactory(roles=[role_with("accueil")], territories=[
        TerritoryFactory(parent=data["lyon_agency"].parent, code="AG-LX")])  # "AG-L" is a prefix of its code
    assert _identify(client, lyon_token, agent=data["lyon"]).status_code == 200  # the token itself works
    unknown = _refusal(_identify(client, lyon_token, agent="personne"))
    assert unknown[:2] == (404, "application/json") and json.loads(unknown[2]) == REFUSED_AGENT
    for agent in (data["nice"], inactive, without_territory, look_alike, "x" * 500, "%",
                  data["nice"].login.upper()):
        assert _refusal(_identify(client, lyon_token, agent=agent)) == unknown, agent
        # Even a malformed number does not tell a known login from an unknown one.
        assert _refusal(_identify(client, lyon_token, phone="abc", agent=agent)) == unknown, agent


def test_the_parties_shown_are_in_both_the_agents_and_the_tokens_scope(client, data, lyon_token):
    regional = AgentFactory(roles=[role_with("accueil")], territories=[data["lyon_agency"].parent])
    region_token = _new_token(system="Téléphonie régionale", territories=["R"])
    wide = _identify(client, region_token, agent=regional).get_json()
    assert sorted(p["number"] for p in wide["parties"]) == ["CL0001001", "CL0001003"] and wide["out_of_scope"] == 0

    narrow = _identify(client, lyon_token, agent=regional).get_json()
    assert [p["number"] for p in narrow["parties"]] == ["CL0001001"]
    assert narrow["out_of_scope"] == 1  # the Nice bakery: in the agent's scope, not in the token's
    assert "Boulangerie" not in json.dumps(narrow, ensure_ascii=False) and "CL0001003" not in json.dumps(narrow)


def test_a_contract_outside_the_tokens_territories_is_never_shown(client, data, lyon_token):
    # Mme Lefèvre (Lyon) also holds the newest active contract, on premises in Nice.
    nice_contract = session.execute(select(Contract).where(Contract.number == "GA-2016-000877")).scalar_one()
    nice_contract.status, nice_contract.start_date, nice_contract.end_date = "active", date(2024, 1, 1), None
    session.add(ContractParty(contract=nice_contract, party_id=data["parties"]["CL0001001"], role="holder"))
    session.commit()
    regional = AgentFactory(roles=[role_with("accueil")], territories=[data["lyon_agency"].parent])
    wide = _identify(client, _new_token(territories=["R"]), agent=regional).get_json()
    helene = next(p for p in wide["parties"] if p["number"] == "CL0001001")
    assert helene["main_contract"]["number"] == "GA-2016-000877"  # the region sees it: the newest
    narrow = _identify(client, lyon_token, agent=regional).get_json()
    assert [p["main_contract"]["number"] for p in narrow["parties"]] == ["EL-2019-000311"]
    assert "GA-2016-000877" not in json.dumps(narrow)


def test_a_token_and_an_agent_meet_when_one_territory_lies_under_the_other(client, data, communes,  # noqa: F811
                                                                           lyon_token):
    commune_agent = AgentFactory(roles=[role_with("accueil")], territories=[communes["lyon"]])
    body = _identify(client, lyon_token, agent=commune_agent).get_json()
    assert [p["number"] for p in body["parties"]] == ["CL0001001"] and body["out_of_scope"] == 1

    commune_token = _new_token(system="Téléphonie mairie", territories=["69123"])
    body = _identify(client, commune_token, agent=data["lyon"]).get_json()  # an agency agent, a commune token
    assert [p["number"] for p in body["parties"]] == ["CL0001001"] and body["out_of_scope"] == 1
    assert _identify(client, commune_token, agent=data["nice"]).get_json() == REFUSED_AGENT


def test_a_token_without_territory_answers_for_nobody(client, data):
    """As the tokens created before tokens had territories: the migration gives them none."""
    plaintext = _new_token()
    session.execute(api_token_territory.delete())
    session.commit()
    assert _token_row(plaintext).territories == []
    for agent in (data["lyon"], data["nice"]):
        response = _identify(client, plaintext, agent=agent)
        assert response.status_code == 404 and response.get_json() == REFUSED_AGENT


def test_calls_are_not_audited_but_the_last_use_is_kept(client, data, token):
    before = _audit_count()
    assert _identify(client, token, agent=data["lyon"]).status_code == 200
    assert _identify(client, token, agent=data["lyon"]).status_code == 200
    assert _audit_count() == before
    assert _token_row(token).last_used_at is not None


def test_the_api_is_rate_limited_per_token(app, client, data, token, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "2 per minute")
    assert _identify(client, token, agent=data["lyon"]).status_code == 200
    assert _identify(client, token, agent=data["lyon"]).status_code == 200
    _assert_json_error(_identify(client, token, agent=data["lyon"]), 429)
    other = _new_token(system="Téléphonie Nice", territories=["AG-N"])
    assert _identify(client, other, agent=data["nice"]).status_code == 200  # another token, its own count


def test_refused_tokens_are_rate_limited_per_address(client, data):
    headers = {}
    for attempt in range(30):
        headers = {"Authorization": f"Bearer gch_wrong{attempt}"}
        assert client.get(URL, query_string={"phone": "0612345678"}, headers=headers).status_code == 401
    _assert_json_error(client.get(URL, query_string={"phone": "0612345678"}, headers=headers), 429)


# --- administration pages ------------------------------------------------------------------------

def _admin_token_page(client) -> str:
    return client.get("/admin/jetons").get_data(as_text=True)


@pytest.mark.parametrize("method,path", [
    ("get", "/admin/jetons"),
    ("post", "/admin/jetons"),
    ("get", "/admin/jetons/{id}/territoires"),
    ("post", "/admin/jetons/{id}/territoires"),
    ("post", "/admin/jetons/{id}/revoke"),
])
def test_token_administration_needs_admin_api_tokens(client, login_as, token, method, path):
    row = _token_row(token)
    login_as("back_office", territories=[row.territories[0]])
    form_token = csrf_token(client.get("/").get_data(as_text=True))
    url = path.format(id=row.id)
    data = {"csrf_token": form_token, "system": "Intrus", "permissions": ["identify"], "territories": ["AG-L"]}
    response = client.get(url) if method == "get" else client.post(url, data=data)
    assert response.status_code == 403
    assert "habilitation" in response.get_data(as_text=True)
    assert _token_count() == 1
    assert _token_row(token).is_active and _territory_codes(token) == ["R"]


def test_the_agents_page_links_to_the_tokens(client, login_as):
    login_as("admin")
    assert 'href="/admin/jetons"' in client.get("/admin/agents").get_data(as_text=True)


def test_create_shows_the_token_once_and_revoke_stops_it(client, login_as, data):
    admin = login_as("admin")
    page = _admin_token_page(client)
    assert "Aucun jeton." in page
    assert '<select id="territories" multiple name="territories"' in page
    assert 'value="AG-L"' in page and 'value="69123"' in page
    response = client.post("/admin/jetons", data={"csrf_token": csrf_token(page), "system": "Téléphonie Lyon",
                                                  "permissions": ["identify"], "territories": ["AG-L"]})
    created = response.get_data(as_text=True)
    assert response.status_code == 200
    (plaintext,) = TOKEN_RE.findall(created)
    assert "ne sera plus jamais affiché" in created and "AG-L" in created
    assert response.headers["Cache-Control"] == "no-store"
    row = _token_row(plaintext)
    assert row.created_by_id == admin.id and row.system == "Téléphonie Lyon"
    assert _territory_codes(plaintext) == ["AG-L"]
    entry = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token",
                                                     AuditEntry.object_id == str(row.id))).scalar_one()
    assert entry.action == "create" and entry.actor_id == admin.id
    assert entry.changes["territories"] == [[], ["AG-L"]]

    assert _identify(client, plaintext, agent=data["lyon"]).status_code == 200
    assert _identify(client, plaintext, agent=data["nice"]).status_code == 404
    listing = _admin_token_page(client)
    assert plaintext not in listing and TOKEN_RE.search(listing) is None
    assert row.prefix in listing and "Téléphonie Lyon" in listing and admin.login in listing
    assert f'<span title="AG-L">{data["lyon_agency"].name}</span>' in listing.replace("&#39;", "'")
    assert f'href="/admin/jetons/{row.id}/territoires"' in listing

    response = client.post(f"/admin/jetons/{row.id}/revoke", data={"csrf_token": csrf_token(listing)})
    assert response.status_code == 302
    assert _token_row(plaintext).revoked_at is not None
    listing = _admin_token_page(client)
    assert "révoqué" in listing and f'href="/admin/jetons/{row.id}/territoires"' not in listing
    _assert_json_error(_identify(client, plaintext, agent=data["lyon"]), 401)
    actions = session.execute(select(AuditEntry.action, AuditEntry.actor_id).where(
        AuditEntry.object_type == "api_token", AuditEntry.object_id == str(row.id)).order_by(AuditEntry.id)).all()
    assert actions == [("create", admin.id), ("update", admin.id)]


def test_revoke_needs_the_csrf_token(client, login_as, token):
    login_as("admin")
    response = client.post(f"/admin/jetons/{_token_row(token).id}/revoke", data={})
    assert response.status_code == 400
    assert _token_row(token).is_active


@pytest.mark.parametrize("form,message", [
    ({"system": "", "permissions": ["identify"], "territories": ["AG-L"]}, "Le nom du système est obligatoire."),
    ({"system": "y" * 150, "permissions": ["identify"], "territories": ["AG-L"]},
     "ne doit pas dépasser 100 caractères"),
    ({"system": "Téléphonie", "territories": ["AG-L"]}, "au moins une permission"),
    ({"system": "Téléphonie", "permissions": ["identify"]}, "Choisissez au moins un territoire pour ce jeton"),
    ({"system": "Téléphonie", "permissions": ["identify"], "territories": ["AG-L", "AG-PARIS"]}, "AG-PARIS"),
])
def test_create_refusals_are_shown_and_write_nothing(client, login_as, communes, form, message):  # noqa: F811
    login_as("admin")
    audit_before = _audit_count()
    response = client.post("/admin/jetons", data={"csrf_token": csrf_token(_admin_token_page(client)), **form})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html.replace("&#39;", "'") and TOKEN_RE.search(html) is None
    assert _token_count() == 0 and _token_territory_count() == 0 and _audit_count() == audit_before


def _territories_page(client, row) -> str:
    response = client.get(f"/admin/jetons/{row.id}/territoires")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_an_administrator_changes_a_tokens_territories(client, login_as, data, lyon_token):
    admin = login_as("admin")
    row = _token_row(lyon_token)
    page = _territories_page(client, row)
    assert re.search(r'<option selected value="AG-L">', page) and not re.search(r'selected value="AG-N"', page)
    assert row.prefix in page and "Téléphonie Lyon" in page

    response = client.post(f"/admin/jetons/{row.id}/territoires",
                           data={"csrf_token": csrf_token(page), "territories": ["AG-N"]})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/jetons")
    listing = _admin_token_page(client)
    assert "Territoires du jeton" in listing and "AG-N" in listing  # the flash message
    assert _territory_codes(lyon_token) == ["AG-N"]
    _assert_json_error(_identify(client, lyon_token, agent=data["lyon"]), 404, "hors du périmètre")
    assert [p["number"] for p in _identify(client, lyon_token, agent=data["nice"]).get_json()["parties"]] \
        == ["CL0001003"]
    entry = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token",
                                                     AuditEntry.object_id == str(row.id),
                                                     AuditEntry.action == "update")).scalar_one()
    assert entry.actor_id == admin.id and entry.changes == {"territories": [["AG-L"], ["AG-N"]]}
    history = _territories_page(client, row)
    assert "Modification" in history and "AG-L" in history and "AG-N" in history


@pytest.mark.parametrize("form,message", [
    ({}, "Choisissez au moins un territoire pour ce jeton"),
    ({"territories": ["AG-N", "AG-PARIS"]}, "AG-PARIS"),
])
def test_changing_territories_refusals_are_shown_and_change_nothing(client, login_as, data, lyon_token,
                                                                    form, message):
    login_as("admin")
    row = _token_row(lyon_token)
    before = _audit_count()
    response = client.post(f"/admin/jetons/{row.id}/territoires",
                           data={"csrf_token": csrf_token(_territories_page(client, row)), **form})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert _territory_codes(lyon_token) == ["AG-L"] and _audit_count() == before


def test_changing_territories_needs_the_csrf_token_an_active_token_and_a_real_one(client, login_as, data,
                                                                                  lyon_token):
    login_as("admin")
    row = _token_row(lyon_token)
    url = f"/admin/jetons/{row.id}/territoires"
    assert client.post(url, data={"territories": ["AG-N"]}).status_code == 400
    assert _territory_codes(lyon_token) == ["AG-L"]

    token_for_form = csrf_token(_territories_page(client, row))
    tokens.revoke(token_id=row.id)
    session.commit()
    page = _territories_page(client, row)
    assert 'id="save-territories"' not in page and "révoqué" in page
    response = client.post(url, data={"csrf_token": token_for_form, "territories": ["AG-N"]})
    assert response.status_code == 422 and "ne peuvent plus être modifiés" in response.get_data(as_text=True)
    assert _territory_codes(lyon_token) == ["AG-L"]

    assert client.get(f"/admin/jetons/{row.id + 1000}/territoires").status_code == 404


# --- command line --------------------------------------------------------------------------------

def test_cli_create_list_revoke(app, data):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-token", "create", "--system", "Téléphonie", "--permissions", "identify",
                                 "--territories", "AG-L, 69123"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[-1]
    assert TOKEN_RE.fullmatch(plaintext)
    assert "territoires : AG-L, 69123" in result.stdout
    row = _token_row(plaintext)
    assert row.digest == hashlib.sha256(plaintext.encode()).hexdigest() and row.created_by_id is None
    assert _territory_codes(plaintext) == ["AG-L", "69123"]  # in tree order
    entry = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token")).scalar_one()
    assert entry.actor_label.startswith("cli:")
    assert _identify(app.test_client(), plaintext, agent=data["lyon"]).status_code == 200
    assert _identify(app.test_client(), plaintext, agent=data["nice"]).status_code == 404

    listing = runner.invoke(args=["api-token", "list"])
    assert listing.exit_code == 0 and row.prefix in listing.output and "actif" in listing.output
    assert "AG-L,69123" in listing.output
    assert plaintext not in listing.output

    changed = runner.invoke(args=["api-token", "territories", str(row.id), "--territories", "AG-N"])
    assert changed.exit_code == 0, changed.output
    assert "territoires AG-N" in changed.output
    session.expire_all()  # the command wrote through its own session
    assert _territory_codes(plaintext) == ["AG-N"]
    update = session.execute(select(AuditEntry).where(AuditEntry.object_type == "api_token",
                                                      AuditEntry.action == "update")).scalar_one()
    assert update.actor_label.startswith("cli:") and update.changes == {"territories": [["69123", "AG-L"], ["AG-N"]]}
    assert "AG-N" in runner.invoke(args=["api-token", "list"]).output
    for refused_args, message in [(["--territories", "AG-X"], "Territoire inconnu : AG-X"),
                                  (["--territories", " , "], "au moins un territoire")]:
        refused = runner.invoke(args=["api-token", "territories", str(row.id), *refused_args])
        assert refused.exit_code == 1 and message in refused.output
    unknown = runner.invoke(args=["api-token", "territories", str(row.id + 1000), "--territories", "AG-N"])
    assert unknown.exit_code == 1 and "Jeton inconnu" in unknown.output
    session.expire_all()
    assert _territory_codes(plaintext) == ["AG-N"]

    revoked = runner.invoke(args=["api-token", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    session.expire_all()  # the command wrote through its own session
    assert "révoqué" in revoked.output and _token_row(plaintext).revoked_at is not None
    assert tokens.authenticate(plaintext) is None
    assert "révoqué" in runner.invoke(args=["api-token", "list"]).output

    again = runner.invoke(args=["api-token", "revoke", str(row.id)])
    assert again.exit_code != 0 and "déjà révoqué" in again.output


@pytest.mark.parametrize("args,message", [
    (["--system", "Téléphonie", "--permissions", "everything", "--territories", "AG-L"],
     "Permission d'API inconnue : everything"),
    (["--system", " ", "--permissions", "identify", "--territories", "AG-L"], "Le nom du système est obligatoire."),
    (["--system", "Téléphonie", "--permissions", "identify"], "Missing option '--territories'"),
    (["--system", "Téléphonie", "--permissions", "identify", "--territories", ","], "au moins un territoire"),
    (["--system", "Téléphonie", "--permissions", "identify", "--territories", "AG-L,AG-PARIS"],
     "Territoire inconnu : AG-PARIS"),
])
def test_cli_create_refuses_bad_input(app, communes, args, message):  # noqa: F811
    result = app.test_cli_runner().invoke(args=["api-token", "create", *args])
    assert result.exit_code != 0 and message in result.output
    assert TOKEN_RE.search(result.output) is None
    assert _token_count() == 0 and _token_territory_count() == 0

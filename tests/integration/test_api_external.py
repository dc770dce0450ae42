"""The API for external actions: one error shape (422 with the fields at fault), idempotency keys
on creations, a dossier's status, master data upserted by the import's rules within the token's
territories, and the OpenAPI description that cannot drift from the routes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

import app.models  # noqa: F401  (every mapper known before app.contacts.objects configures them)
from app.api import idempotency, tokens
from app.api.models import ApiIdempotencyKey
from app.audit.models import AuditEntry
from app.contracts.models import Contract, Invoice, Payment, ServicePoint
from app.db import session
from app.dossiers.models import Dossier
from app.integration.billing_import import import_directory
from app.parties.models import Party
from app.processes import service as processes
from tests.integration.contacts_world import dossier_type
from tests.integration.test_billing_import import EXAMPLE, TABLES, communes  # noqa: F401  (fixture)
from tests.integration.test_process_instances import (
    FORM,
    MESSAGE_BODY,
    deploy,
    open_dossier,
    world_fixture,  # noqa: F401  (fixture)
)

OPENAPI = Path(__file__).resolve().parents[2] / "app" / "api" / "openapi.json"


def _token(*permissions: str, territories=("A-LYON",)) -> str:
    _row, plaintext = tokens.create_token(system="Facturation", permissions=list(permissions),
                                          territory_codes=list(territories), created_by=None)
    session.commit()
    return plaintext


def _headers(token: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _count(model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "fields"} and body["error"], body
    return body


@pytest.fixture
def kind(world):
    return dossier_type(label="Relance facture", code="RELANCE")


def _dossier_body(world, **extra) -> dict:
    return {"classification": "RELANCE", "subject": "Relance automatique",
            "parties": [{"number": world.helene.number, "role": "payer"}], "contracts": [world.contract.number],
            **extra}


# --- authentication and permissions --------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("get", "/api/v1/dossiers/DOS-2026-000001"),
                                             ("post", "/api/v1/masterdata"), ("post", "/api/v1/dossiers")])
def test_every_endpoint_refuses_a_missing_invalid_or_revoked_token(client, world, method, path):
    token = _token("dossier.read", "dossier.create", "masterdata.write")
    call = getattr(client, method)
    assert "Bearer" in _error(call(path, json={}), 401)["error"]
    _error(call(path, json={}, headers={"Authorization": "Bearer gch_nope"}), 401)
    tokens.revoke(token_id=tokens.authenticate(token).id)
    session.commit()
    assert "révoqué" in _error(call(path, json={}, headers=_headers(token)), 401)["error"]


@pytest.mark.parametrize(("method", "path", "permission"), [
    ("get", "/api/v1/dossiers/DOS-2026-000001", "dossier.read"),
    ("post", "/api/v1/masterdata", "masterdata.write"),
    ("post", "/api/v1/dossiers", "dossier.create"),
])
def test_a_token_without_the_permission_gets_403(client, world, method, path, permission):
    others = [p for p in tokens.API_PERMISSIONS if p != permission]
    response = getattr(client, method)(path, json={"parties": []}, headers=_headers(_token(*others)))
    assert permission in _error(response, 403)["error"]


def test_the_new_permissions_are_offered_on_the_token_page(client, login_as, world):
    assert {"dossier.read", "masterdata.write"} <= set(tokens.API_PERMISSIONS)
    login_as("admin", territories=[world.places["lyon_agency"]], permissions=["admin.api_tokens"])
    page = client.get("/admin/jetons").get_data(as_text=True)
    assert 'value="dossier.read"' in page and 'value="masterdata.write"' in page


# --- dossier creation: 422 with every field at fault ----------------------------------------------

def test_every_malformed_field_is_named_at_once_and_nothing_is_written(client, world, kind):
    token = _token("dossier.create")
    response = client.post("/api/v1/dossiers", headers=_headers(token), json={
        "classification": "NOPE", "subject": "x" * 201,
        "parties": [{"number": world.helene.number, "role": "boss"}, {"role": "payer"}, "CL1"],
        "contracts": [world.contract.number, 42], "invoices": "F-1"})
    body = _error(response, 422)
    assert body["fields"] == {
        "classification": "Classification de dossier inconnue ou inactive : NOPE.",
        "subject": "L'objet tient en 200 caractères.",
        "parties[0].role": body["fields"]["parties[0].role"],
        "parties[1].number": "Le numéro de client est obligatoire (40 caractères au plus).",
        "parties[2]": "Un objet {number, role} est attendu.",
        "contracts[1]": "Un numéro de 1 à 40 caractères est attendu.",
        "invoices": "Une liste de numéros est attendue.",
    }
    assert body["fields"]["parties[0].role"].startswith("Rôle d'interlocuteur inconnu : boss")
    assert "7 champ(s)" in body["error"]
    assert _count(Dossier) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"parties": []}, "parties"),
    ({"subject": "a\x00b"}, "subject"),
    ({"subject": 12}, "subject"),
    ({"parties": [{"number": "CW0000001"}] * 51}, "parties"),
    ({"contracts": ["x" * 41]}, "contracts[0]"),
])
def test_each_kind_of_bad_field_is_a_422_naming_it(client, world, kind, body, field):
    response = client.post("/api/v1/dossiers", headers=_headers(_token("dossier.create")),
                           json={**_dossier_body(world), **body})
    assert field in _error(response, 422)["fields"]
    assert _count(Dossier) == 0


def test_a_body_that_is_no_json_object_is_a_400(client, world, kind):
    headers = {**_headers(_token("dossier.create")), "Content-Type": "application/json"}
    for raw in ("not json", "[1, 2]", ""):
        assert _error(client.post("/api/v1/dossiers", headers=headers, data=raw), 400)["fields"] == {
            "body": "Un objet JSON est attendu."}


def test_a_number_out_of_the_tokens_territories_is_the_same_404_as_a_missing_one(client, world, kind):
    token = _token("dossier.create")
    outside = client.post("/api/v1/dossiers", headers=_headers(token), json=_dossier_body(
        world, parties=[{"number": world.bernard.number}]))  # Saint-Étienne: the Loire agency
    missing = client.post("/api/v1/dossiers", headers=_headers(token), json=_dossier_body(
        world, parties=[{"number": "CW9999999"}]))
    assert _error(outside, 404)["fields"] == {"parties[0].number": "Numéro inconnu ou hors du périmètre de ce jeton"
                                                                   f" : {world.bernard.number}."}
    assert list(_error(missing, 404)["fields"]) == ["parties[0].number"]
    assert _count(Dossier) == 0


# --- idempotency -----------------------------------------------------------------------------------

def test_the_same_key_and_body_replay_the_first_answer_without_creating_again(client, world, kind):
    token = _token("dossier.create")
    first = client.post("/api/v1/dossiers", headers=_headers(token, "relance-42"), json=_dossier_body(world))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # The same content, its keys in another order and laid out differently: the same request.
    raw = json.dumps(dict(reversed(list(_dossier_body(world).items()))), indent=2)
    again = client.post("/api/v1/dossiers", headers={**_headers(token, "relance-42"),
                                                     "Content-Type": "application/json"}, data=raw)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _count(Dossier) == 1
    # Without a key, or with another one, it is another request.
    other = client.post("/api/v1/dossiers", headers=_headers(token, "relance-43"), json=_dossier_body(world))
    assert other.status_code == 201 and other.get_json()["reference"] != first.get_json()["reference"]
    assert _count(Dossier) == 2


def test_the_same_key_with_another_body_is_refused(client, world, kind):
    token = _token("dossier.create")
    assert client.post("/api/v1/dossiers", headers=_headers(token, "k-1"), json=_dossier_body(world)).status_code == 201
    response = client.post("/api/v1/dossiers", headers=_headers(token, "k-1"),
                           json=_dossier_body(world, subject="Autre chose"))
    body = _error(response, 422)
    assert "déjà servi pour une autre requête" in body["error"] and list(body["fields"]) == ["Idempotency-Key"]
    assert _count(Dossier) == 1


def test_keys_belong_to_their_token(client, world, kind):
    first, second = _token("dossier.create"), _token("dossier.create")
    client.post("/api/v1/dossiers", headers=_headers(first, "shared"), json=_dossier_body(world))
    response = client.post("/api/v1/dossiers", headers=_headers(second, "shared"), json=_dossier_body(world))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert _count(Dossier) == 2


def test_a_refusal_is_not_stored_and_the_key_can_be_reused(client, world, kind):
    token = _token("dossier.create")
    bad = client.post("/api/v1/dossiers", headers=_headers(token, "k-2"), json=_dossier_body(world, subject=3))
    _error(bad, 422)
    assert _count(ApiIdempotencyKey) == 0
    assert client.post("/api/v1/dossiers", headers=_headers(token, "k-2"), json=_dossier_body(world)).status_code == 201


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "clé-é", "a b"])
def test_a_malformed_key_is_a_422(client, world, kind, key):
    response = client.post("/api/v1/dossiers", headers=_headers(_token("dossier.create"), key),
                           json=_dossier_body(world))
    assert list(_error(response, 422)["fields"]) == ["Idempotency-Key"]
    assert _count(Dossier) == 0


def test_keys_expire_after_24_hours(client, world, kind, frozen_clock):
    token = _token("dossier.create")
    client.post("/api/v1/dossiers", headers=_headers(token, "daily"), json=_dossier_body(world))
    frozen_clock.advance(hours=23, minutes=59)
    assert client.post("/api/v1/dossiers", headers=_headers(token, "daily"),
                       json=_dossier_body(world)).headers.get("Idempotent-Replayed") == "true"
    frozen_clock.advance(minutes=1)
    response = client.post("/api/v1/dossiers", headers=_headers(token, "daily"), json=_dossier_body(world))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert _count(Dossier) == 2 and _count(ApiIdempotencyKey) == 1  # the expired one was replaced


def test_a_concurrent_duplicate_loses_on_the_unique_key_and_replays_the_winner(client, world, kind, monkeypatch):
    """Two copies sent together both find no key; the second to commit hits the unique constraint,
    drops its own dossier and answers with the first one's."""
    token = _token("dossier.create")
    first = client.post("/api/v1/dossiers", headers=_headers(token, "race"), json=_dossier_body(world))
    real_stored, calls = idempotency._stored, []

    def blind_first_lookup(token_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real_stored(token_id, key)

    monkeypatch.setattr(idempotency, "_stored", blind_first_lookup)
    second = client.post("/api/v1/dossiers", headers=_headers(token, "race"), json=_dossier_body(world))
    assert len(calls) == 2  # the lookup before the view, and the one after the refused commit
    assert second.status_code == 201 and second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert _count(Dossier) == 1


def test_a_message_can_carry_a_key_too(client, world):
    deploy("paid", MESSAGE_BODY, {"form.json": FORM})
    dossier = open_dossier(world, "paid")
    processes.start(key="paid", agent=None, dossier=dossier)
    session.commit()
    token = _token("process.message")
    url = f"/api/v1/dossiers/{dossier.reference}/messages"
    first = client.post(url, headers=_headers(token, "paid-F1"), json={"name": "facture_payee"})
    again = client.post(url, headers=_headers(token, "paid-F1"), json={"name": "facture_payee"})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    bad = client.post(url, headers=_headers(token), json={"name": "facture payée", "payload": {"a": [1]}})
    assert set(_error(bad, 422)["fields"]) == {"name", "payload.a"}


# --- reading a dossier's status --------------------------------------------------------------------

def test_a_dossiers_status_with_its_process_and_current_steps(client, world):
    deploy("paid", MESSAGE_BODY, {"form.json": FORM})
    dossier = open_dossier(world, "paid")
    instance = processes.start(key="paid", agent=None, dossier=dossier)
    dossier.external_ref = "AFF-2026-0042"
    session.commit()
    response = client.get(f"/api/v1/dossiers/{dossier.reference}", headers=_headers(_token("dossier.read")))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in ("reference", "status", "subject", "origin", "external_ref", "closed_at")} == {
        "reference": dossier.reference, "status": "open", "subject": dossier.subject, "origin": "manual",
        "external_ref": "AFF-2026-0042", "closed_at": None}
    assert body["classification"] == {"code": dossier.dossier_type.code, "label": "Dossier paid"}
    assert body["created_at"].startswith(dossier.created_at.isoformat()[:16])
    process = body["process"]
    assert (process["id"], process["key"], process["status"]) == (instance.id, "paid", "running")
    assert [(s["element"], s["name"]) for s in process["current_steps"]] == [("enter", "Étape enter")]


def test_a_dossier_without_process_has_none(client, world, kind):
    token = _token("dossier.create", "dossier.read")
    created = client.post("/api/v1/dossiers", headers=_headers(token), json=_dossier_body(world)).get_json()
    body = client.get(f"/api/v1/dossiers/{created['reference']}", headers=_headers(token)).get_json()
    assert body["origin"] == "automatic" and body["process"] is None and body["external_ref"] is None


def test_a_dossier_out_of_the_tokens_territories_is_the_same_404_as_a_missing_one(client, world):
    dossier = open_dossier(world, "paid")
    loire = _token("dossier.read", territories=("A-LOIRE",))
    outside = client.get(f"/api/v1/dossiers/{dossier.reference}", headers=_headers(loire))
    missing = client.get("/api/v1/dossiers/DOS-1999-000001", headers=_headers(loire))
    too_long = client.get("/api/v1/dossiers/" + "D" * 500, headers=_headers(loire))
    assert _error(outside, 404) == _error(missing, 404) == _error(too_long, 404)
    assert dossier.subject not in outside.get_data(as_text=True)


# --- master data -----------------------------------------------------------------------------------

@pytest.fixture
def billing(communes):  # noqa: F811
    assert import_directory(EXAMPLE).ok
    session.commit()
    return communes


def _counts() -> dict[str, int]:
    return {m.__tablename__: _count(m) for m in TABLES}


def _lyon() -> str:
    return _token("masterdata.write", territories=("AG-L",))


NEW_CUSTOMER = {
    "parties": [{"external_ref": "BP-1100", "customer_number": "CL0001100", "last_name": "Martin",
                 "first_name": "Léa", "phones": ["06 11 22 33 44"], "emails": ["lea.martin@example.fr"],
                 "insee_code": "69123", "vulnerable": False}],
    "service_points": [{"external_ref": "SP-2100", "kind": "water", "national_id": "EAU-69123-000999",
                        "insee_code": "69123", "main_residence": True}],
    "contracts": [{"external_ref": "CT-3100", "number": "EA-2026-000100", "service_point_ref": "SP-2100",
                   "status": "active", "start_date": "2026-01-01"}],
    "contract_parties": [{"contract_ref": "CT-3100", "party_ref": "BP-1100", "role": "holder"}],
    "invoices": [{"external_ref": "IN-4100", "number": "F2026-000100", "contract_ref": "CT-3100",
                  "issued_on": "2026-02-01", "due_on": "2026-02-20", "amount": 84.6, "status": "open"}],
}


def test_upsert_creates_then_updates_by_the_import_rules(client, billing):
    token = _lyon()
    response = client.post("/api/v1/masterdata", headers=_headers(token), json=NEW_CUSTOMER)
    assert response.status_code == 200, response.get_json()
    counts = response.get_json()["counts"]
    assert counts["party"]["created"] == counts["contract"]["created"] == counts["invoice"]["created"] == 1
    party = session.execute(select(Party).where(Party.external_ref == "BP-1100")).scalar_one()
    assert party.status == "customer" and party.territory_id == billing["lyon"].id  # derived as by the import
    assert [p.number for p in party.phones] == ["+33611223344"]
    invoice = session.execute(select(Invoice).where(Invoice.external_ref == "IN-4100")).scalar_one()
    assert str(invoice.amount) == "84.60" and str(invoice.amount_paid) == "0.00"
    # "Facture payée": the invoice updated, its payment recorded.
    paid = {"invoices": [{**NEW_CUSTOMER["invoices"][0], "amount_paid": "84,60", "status": "paid"}],
            "payments": [{"external_ref": "PM-5100", "invoice_ref": "IN-4100", "paid_on": "2026-02-18",
                          "amount": "84.60", "method": "carte"}]}
    response = client.post("/api/v1/masterdata", headers=_headers(token), json=paid)
    assert response.get_json()["counts"] == {"invoice": {"created": 0, "updated": 1, "unchanged": 0},
                                             "payment": {"created": 1, "updated": 0, "unchanged": 0}}
    session.expire_all()
    assert (invoice.status, str(invoice.amount_paid)) == ("paid", "84.60")
    assert session.execute(select(Payment.invoice_id).where(Payment.external_ref == "PM-5100")).scalar_one() \
        == invoice.id
    # Sent again, nothing changes.
    again = client.post("/api/v1/masterdata", headers=_headers(token), json=paid).get_json()["counts"]
    assert again["invoice"] == {"created": 0, "updated": 0, "unchanged": 1}
    entries = session.execute(select(AuditEntry).where(AuditEntry.action == "import",
                                                       AuditEntry.object_type == "billing_export")
                              .order_by(AuditEntry.id)).scalars().all()
    assert len(entries) == 4  # the files, then each call
    assert entries[-1].object_id == f"api:{token[:12]}" and entries[-1].actor_label == f"api:{token[:12]}"
    assert entries[-1].changes["source"] == "api" and entries[-1].changes["counts"]["invoice"]["unchanged"] == 1


def test_an_update_of_an_existing_party_is_audited_with_its_changes(client, billing):
    response = client.post("/api/v1/masterdata", headers=_headers(_lyon()), json={"parties": [
        {"external_ref": "BP-1004", "customer_number": "CL0001004", "civility": "M.", "first_name": "Noé",
         "last_name": "Garnier-Roux", "phones": "07 81 22 33 44", "street": "45 cours Lafayette",
         "postal_code": "69003", "city": "Lyon", "insee_code": "69123"}]})
    assert response.get_json()["counts"]["party"]["updated"] == 1
    entry = session.execute(select(AuditEntry).where(AuditEntry.object_type == "party", AuditEntry.action == "update")
                            .order_by(AuditEntry.id.desc())).scalars().first()
    assert entry.changes["last_name"] == ["Garnier", "Garnier-Roux"]


def test_invalid_fields_are_named_by_path_and_nothing_is_written(client, billing):
    before = _counts()
    body = json.loads(json.dumps(NEW_CUSTOMER))
    body["parties"][0].update(customer_number="", phones=["12"], birth_date="1990-13-01")
    body["invoices"][0].update(amount="-4", due_on="2026-01-01")
    body["contracts"][0]["service_point_ref"] = "SP-9999"
    body["payments"] = [{"external_ref": "PM-1", "invoice_ref": "IN-4001", "paid_on": "2026-01-01",
                         "amount": "1", "colour": "blue"}]
    response = client.post("/api/v1/masterdata", headers=_headers(_lyon()), json=body)
    fields = _error(response, 422)["fields"]
    assert fields["parties[0].customer_number"] == "valeur obligatoire manquante"
    assert "parties[0].phones" in fields and "parties[0].birth_date" in fields
    assert fields["invoices[0].amount"] == "montant négatif « -4 »"
    assert fields["payments[0].colour"].startswith("Champ inconnu")
    assert "rien n'a été écrit" in response.get_json()["error"]
    assert _counts() == before


def test_references_and_numbers_are_checked_as_by_the_import(client, billing):
    before = _counts()
    body = {"contracts": [{"external_ref": "CT-3100", "number": "EL-2019-000311", "service_point_ref": "SP-9999",
                           "status": "terminated", "start_date": "2026-01-01"}]}
    fields = _error(client.post("/api/v1/masterdata", headers=_headers(_lyon()), json=body), 422)["fields"]
    assert fields == {"contracts[0].end_date": "un contrat résilié doit avoir une date de fin"}
    body["contracts"][0].update(status="active")
    fields = _error(client.post("/api/v1/masterdata", headers=_headers(_lyon()), json=body), 422)["fields"]
    assert fields == {
        "contracts[0].service_point_ref": "point de desserte inconnu ou hors du périmètre de ce jeton : SP-9999",
        "contracts[0].number": "number « EL-2019-000311 » déjà attribué à un autre objet"}
    assert _counts() == before


def test_records_out_of_the_tokens_territories_are_refused(client, billing):
    before = _counts()
    token = _lyon()
    # A new service point in Nice, an update of a Nice contract, an invoice on a Nice contract,
    # a Lyon party moved to Nice, and a new party without commune.
    body = {
        "service_points": [{"external_ref": "SP-2101", "kind": "gas", "insee_code": "06088"}],
        "contracts": [{"external_ref": "CT-3003", "number": "GA-2016-000877", "service_point_ref": "SP-2001",
                       "status": "active", "start_date": "2016-03-01"}],
        "invoices": [{"external_ref": "IN-4101", "number": "F2026-000101", "contract_ref": "CT-3003",
                      "issued_on": "2026-01-01", "due_on": "2026-01-31", "amount": "10", "status": "open"}],
        "parties": [{"external_ref": "BP-1001", "customer_number": "CL0001001", "last_name": "Lefèvre",
                     "insee_code": "06088"},
                    {"external_ref": "BP-1101", "customer_number": "CL0001101", "last_name": "Sans-Commune"}],
    }
    fields = _error(client.post("/api/v1/masterdata", headers=_headers(token), json=body), 422)["fields"]
    assert fields["service_points[0].insee_code"] == "Commune 06088 hors des territoires de ce jeton."
    assert fields["contracts[0].external_ref"] == "Objet existant hors du périmètre de ce jeton : CT-3003."
    assert fields["parties[0].insee_code"] == "Commune 06088 hors des territoires de ce jeton."
    assert fields["parties[1].insee_code"].startswith("Obligatoire pour créer un interlocuteur")
    assert _counts() == before
    invoice_only = {"invoices": body["invoices"]}
    fields = _error(client.post("/api/v1/masterdata", headers=_headers(token), json=invoice_only), 422)["fields"]
    assert fields == {"invoices[0].contract_ref": "contrat inconnu ou hors du périmètre de ce jeton : CT-3003"}
    # The same records are the Nice token's business (the first party aside, which is Lyon's).
    nice = _token("masterdata.write", territories=("AG-N",))
    body["parties"] = [{**body["parties"][1], "insee_code": "06088"}]
    response = client.post("/api/v1/masterdata", headers=_headers(nice), json=body)
    assert response.status_code == 422 and list(response.get_json()["fields"]) == ["contracts[0].service_point_ref"]
    body["contracts"][0]["service_point_ref"] = "SP-2003"
    assert client.post("/api/v1/masterdata", headers=_headers(nice), json=body).status_code == 200
    assert session.execute(select(ServicePoint.territory_id).where(ServicePoint.external_ref == "SP-2101")
                           ).scalar_one() == billing["nice"].id


def test_a_meter_installed_outside_the_token_cannot_be_rewritten(client, billing):
    before = _counts()
    # The Nice gas meter, "moved" to a Lyon service point: its Nice history would be wiped out.
    body = {"meters": [{"serial": "GAZ-77001", "kind": "gas", "service_point_ref": "SP-2001",
                        "installed_on": "2026-01-01"}]}
    fields = _error(client.post("/api/v1/masterdata", headers=_headers(_lyon()), json=body), 422)["fields"]
    assert fields == {"meters[0].serial": "Compteur posé hors du périmètre de ce jeton : GAZ-77001."}
    assert _counts() == before


@pytest.mark.parametrize(("body", "field"), [
    ({}, "body"),
    ({"parties": []}, "body"),
    ({"customers": [{}]}, "customers"),
    ({"invoices": {"external_ref": "x"}}, "invoices"),
    ({"invoices": ["IN-1"]}, "invoices[0]"),
    ({"invoices": [{"external_ref": {"a": 1}}]}, "invoices[0].external_ref"),
    ({"payments": [{"external_ref": "P"}] * 1001}, "body"),
    ({"payments": [{"external_ref": "PM-9", "invoice_ref": "IN-4001", "paid_on": "2026-01-01", "amount": "1"}] * 2},
     "payments[1]"),
])
def test_malformed_requests_are_422(client, billing, body, field):
    before = _counts()
    assert field in _error(client.post("/api/v1/masterdata", headers=_headers(_lyon()), json=body), 422)["fields"]
    assert _counts() == before


def test_an_upsert_can_be_replayed_by_its_key(client, billing):
    token = _lyon()
    first = client.post("/api/v1/masterdata", headers=_headers(token, "md-1"), json=NEW_CUSTOMER)
    again = client.post("/api/v1/masterdata", headers=_headers(token, "md-1"), json=NEW_CUSTOMER)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert first.get_json()["counts"]["contract"]["created"] == 1
    assert _count(Contract) == 4


# --- the OpenAPI description -------------------------------------------------------------------------

def test_the_description_is_valid_openapi_31_and_served_without_a_token(client):
    from openapi_spec_validator import validate

    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    validate(document)
    assert document["openapi"].startswith("3.1")
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json() == document


def test_every_route_of_the_api_is_documented_and_nothing_else(app):
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    prefix = document["servers"][0]["url"]
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix(prefix).replace("<", "{").replace(">", "}")
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented


def test_the_documented_permissions_and_roles_match_the_code(app):
    from app.contacts.models import PartyLinkRole
    from app.contracts.models import ContractRole, InvoiceStatus

    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    role = schemas["DossierRequest"]["properties"]["parties"]["items"]["properties"]["role"]
    assert tuple(role["enum"]) == PartyLinkRole.ALL
    assert tuple(schemas["ContractPartyRecord"]["properties"]["role"]["enum"][:-1]) == ContractRole.ALL
    assert tuple(schemas["InvoiceRecord"]["properties"]["status"]["enum"][:-1]) == InvoiceStatus.ALL
    summaries = " ".join(op["summary"] for item in document["paths"].values() for op in item.values())
    for code in tokens.API_PERMISSIONS:
        assert f"permission {code}" in summaries
    from app.api.masterdata import COLLECTIONS
    assert set(schemas["MasterdataRequest"]["properties"]) == set(COLLECTIONS)
    for name, spec in COLLECTIONS.items():
        record = schemas["MasterdataRequest"]["properties"][name]["items"]["$ref"].rsplit("/", 1)[1]
        assert set(schemas[record]["properties"]) == set(spec.columns), name

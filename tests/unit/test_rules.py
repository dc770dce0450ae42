"""Eligibility rules as data (app.contacts.rules): what parse refuses and how, what it normalises,
and evaluate for every fact type and operator, with the reasons an ineligible item shows."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from app.contacts import rules
from app.contacts.rules import Condition, RuleError, evaluate, parse

LYON = ("R-ARA", "A-LYON", "C-69123")  # the territory fact: codes from the root down


@pytest.fixture(autouse=True)
def _babel(app_ctx):
    """gettext and the money format read the application's default language (French)."""
    yield


def plain(text: str) -> str:
    """Babel's no-break spaces as plain ones."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " ")).strip()


def refused(raw, **kwargs) -> str:
    with pytest.raises(RuleError) as error:
        parse(raw, **kwargs)
    return plain(str(error.value))


def one(fact: str, op: str, value) -> list[Condition]:
    return parse([{"fact": fact, "op": op, "value": value}])


# --- parse: what it refuses -----------------------------------------------------------------------

VALID = {"fact": "channel", "op": "in", "value": ["phone"]}


@pytest.mark.parametrize(("condition", "message"), [
    ({"fact": "colour", "op": "in", "value": ["red"]}, "Critère inconnu : colour."),
    ({"op": "in", "value": ["red"]}, "Critère inconnu : —."),
    ({"fact": "overdue_amount", "op": "in", "value": "0"},
     "Opérateur « in » impossible pour le critère « Montant impayé échu »."),
    ({"fact": "channel", "op": "gt", "value": ["phone"]},
     "Opérateur « gt » impossible pour le critère « Canal du contact »."),
    ({"fact": "vulnerable", "op": "in", "value": True},
     "Opérateur « in » impossible pour le critère « Client en situation de fragilité »."),
    ({"fact": "territory", "op": "is", "value": "A-LYON"},
     "Opérateur « is » impossible pour le critère « Territoire »."),
    ({"fact": "channel", "op": "in", "value": ["phone", "pigeon"]},
     "Valeur inconnue pour « Canal du contact » : pigeon."),
    ({"fact": "contract_status", "op": "in", "value": ["cancelled"]},
     "Valeur inconnue pour « Statut du contrat courant » : cancelled."),
    ({"fact": "channel", "op": "in", "value": []}, "Donnez au moins une valeur."),
    ({"fact": "open_dossier_types", "op": "includes", "value": ["RECLAMATION", 3]}, "Donnez au moins une valeur."),
    ({"fact": "overdue_amount", "op": "gt", "value": "douze"}, "« douze » n'est pas un nombre."),
    ({"fact": "overdue_invoices", "op": "gte", "value": "2 factures"}, "« 2 factures » n'est pas un nombre."),
    ({"fact": "overdue_invoices", "op": "gte", "value": None}, "« None » n'est pas un nombre."),
    ({"fact": "overdue_amount", "op": "gt", "value": "NaN"}, "« NaN » n'est pas un nombre."),
    ({"fact": "open_dossiers", "op": "lt", "value": "Infinity"}, "« Infinity » n'est pas un nombre."),
    ({"fact": "vulnerable", "op": "is", "value": "peut-être"},
     "« Client en situation de fragilité » attend oui ou non."),
    ({"fact": "main_residence", "op": "is", "value": 1}, "« Résidence principale » attend oui ou non."),
    ({"fact": "territory", "op": "under", "value": ""}, "Territoire inconnu : —."),
    ("channel", "Une condition doit être un objet {fact, op, value}."),
    (["channel", "in", "phone"], "Une condition doit être un objet {fact, op, value}."),
])
def test_parse_refuses_a_malformed_condition_naming_its_number(condition, message):
    assert refused([condition]) == f"Condition 1 : {message}"
    # The number is the condition's place in the rule, counted from 1.
    assert refused([VALID, VALID, condition]) == f"Condition 3 : {message}"


def test_an_unknown_territory_is_refused_when_the_known_ones_are_given():
    rule = [VALID, {"fact": "territory", "op": "under", "value": "A-NOWHERE"}]
    assert refused(rule, known_territories={"A-LYON", "R-ARA"}) == "Condition 2 : Territoire inconnu : A-NOWHERE."
    [_channel, territory] = parse(rule)  # without the list of known codes, any code is taken as is
    assert territory == Condition("territory", "under", "A-NOWHERE")
    assert parse([{"fact": "territory", "op": "not_under", "value": " A-LYON "}],
                 known_territories={"A-LYON"}) == [Condition("territory", "not_under", "A-LYON")]


@pytest.mark.parametrize("raw", [{"fact": "channel", "op": "in", "value": ["phone"]}, "channel in phone", 3, True])
def test_a_rule_that_is_not_a_list_is_refused(raw):
    assert refused(raw) == "Une règle est une liste de conditions."


@pytest.mark.parametrize("raw", [None, "", []])
def test_an_empty_rule_has_no_condition_and_always_holds(raw):
    assert parse(raw) == []
    assert evaluate(parse(raw), {}).eligible


# --- parse: what it normalises --------------------------------------------------------------------

def test_parse_normalises_values_to_their_type():
    conditions = parse([
        {"fact": "channel", "op": "in", "value": "phone, front_desk,phone"},
        {"fact": "open_dossier_types", "op": "excludes", "value": ["RECLAMATION", "PLAN_PAIEMENT"]},
        {"fact": "overdue_amount", "op": "gte", "value": "1 234,5 €"},
        {"fact": "overdue_invoices", "op": "gt", "value": 2},
        {"fact": "vulnerable", "op": "is", "value": "Oui"},
        {"fact": "main_residence", "op": "is", "value": "non"},
        {"fact": "party_status", "op": "not_in", "value": ["prospect"]},
        {"fact": "territory", "op": "under", "value": "A-LYON"},
    ])
    assert conditions == [
        Condition("channel", "in", ["front_desk", "phone"]),
        Condition("open_dossier_types", "excludes", ["PLAN_PAIEMENT", "RECLAMATION"]),
        Condition("overdue_amount", "gte", Decimal("1234.50")),
        Condition("overdue_invoices", "gt", Decimal("2")),
        Condition("vulnerable", "is", True),
        Condition("main_residence", "is", False),
        Condition("party_status", "not_in", ["prospect"]),
        Condition("territory", "under", "A-LYON"),
    ]
    assert str(conditions[2].value) == "1234.50"  # money to the cent
    assert rules.to_json(conditions)[2] == {"fact": "overdue_amount", "op": "gte", "value": "1234.50"}
    assert parse(rules.to_json(conditions)) == conditions  # what is stored reads back the same
    assert rules.to_json([]) is None


# --- evaluate -------------------------------------------------------------------------------------

def verdict(fact: str, op: str, value, actual):
    return evaluate(one(fact, op, value), {fact: actual})


def reason(fact: str, op: str, value, actual) -> str:
    result = verdict(fact, op, value, actual)
    assert not result.eligible
    [text] = result.reasons
    return plain(text)


def test_choice_in_and_not_in():
    assert verdict("channel", "in", ["phone", "front_desk"], "phone").eligible
    assert reason("channel", "in", ["phone", "front_desk"], "letter") == \
        "Canal du contact est parmi Accueil physique, Téléphone (ici : Courrier)"
    assert verdict("channel", "not_in", ["letter"], "phone").eligible
    assert reason("channel", "not_in", ["letter"], "letter") == \
        "Canal du contact n'est pas parmi Courrier (ici : Courrier)"
    assert reason("direction", "in", ["out"], "in") == "Sens du contact est parmi Sortant (ici : Entrant)"
    assert reason("party_status", "in", ["customer"], "prospect") == \
        "Statut du client est parmi Client (ici : Prospect)"
    assert reason("service_point_kind", "in", ["gas"], "water") == \
        "Énergie du contrat courant est parmi Gaz (ici : Eau)"
    # No value at all (no channel chosen yet, no current contract's energy) is not among any.
    assert reason("channel", "in", ["phone"], None) == "Canal du contact est parmi Téléphone (ici : —)"
    assert verdict("service_point_kind", "not_in", ["gas"], None).eligible


def test_contract_status_none_stands_for_no_current_contract():
    assert verdict("contract_status", "in", ["none"], rules.NO_CONTRACT).eligible
    assert reason("contract_status", "in", ["active"], rules.NO_CONTRACT) == \
        "Statut du contrat courant est parmi Actif (ici : Aucun contrat courant)"
    assert reason("contract_status", "not_in", ["terminated", "none"], "terminated") == \
        "Statut du contrat courant n'est pas parmi Aucun contrat courant, Résilié (ici : Résilié)"


def test_codes_includes_and_excludes():
    assert verdict("open_dossier_types", "includes", ["RECLAMATION", "X"], ["PLAN", "RECLAMATION"]).eligible
    assert reason("open_dossier_types", "includes", ["RECLAMATION"], ["PLAN", "AUTRE"]) == \
        "Classifications des dossiers en cours comprend RECLAMATION (ici : AUTRE, PLAN)"
    assert reason("open_dossier_types", "includes", ["RECLAMATION"], []) == \
        "Classifications des dossiers en cours comprend RECLAMATION (ici : aucun)"
    assert verdict("open_dossier_types", "excludes", ["RECLAMATION"], ["PLAN"]).eligible
    assert verdict("open_dossier_types", "excludes", ["RECLAMATION"], []).eligible
    assert reason("open_dossier_types", "excludes", ["RECLAMATION", "X"], ["RECLAMATION"]) == \
        "Classifications des dossiers en cours ne comprend pas RECLAMATION, X (ici : RECLAMATION)"


@pytest.mark.parametrize(("op", "symbol", "holds_for", "fails_for"), [
    ("eq", "=", 2, 3),
    ("gt", ">", 3, 2),
    ("gte", "≥", 2, 1),
    ("lt", "<", 1, 2),
    ("lte", "≤", 2, 3),
])
def test_number_operators(op, symbol, holds_for, fails_for):
    assert verdict("overdue_invoices", op, "2", holds_for).eligible
    assert reason("overdue_invoices", op, "2", fails_for) == \
        f"Nombre de factures impayées échues {symbol} 2 (ici : {fails_for})"
    assert reason("open_dossiers", op, 2, None) == f"Nombre de dossiers en cours du client {symbol} 2 (ici : —)"


@pytest.mark.parametrize(("op", "symbol", "holds_for", "fails_for"), [
    ("eq", "=", "114.20", "114.21"),
    ("gt", ">", "114.21", "114.20"),
    ("gte", "≥", "114.20", "114.19"),
    ("lt", "<", "114.19", "114.20"),
    ("lte", "≤", "114.20", "114.21"),
])
def test_money_operators(op, symbol, holds_for, fails_for):
    assert verdict("overdue_amount", op, "114,20", Decimal(holds_for)).eligible
    shown = fails_for.replace(".", ",")
    assert reason("overdue_amount", op, "114,20", Decimal(fails_for)) == \
        f"Montant impayé échu {symbol} 114,20 € (ici : {shown} €)"


def test_money_compares_to_the_cent_exactly():
    assert verdict("overdue_amount", "gt", "0", Decimal("0.01")).eligible
    assert reason("overdue_amount", "gt", "0", Decimal("0.00")) == "Montant impayé échu > 0,00 € (ici : 0,00 €)"
    assert reason("overdue_amount", "gt", "0,01", Decimal("0.01")) == "Montant impayé échu > 0,01 € (ici : 0,01 €)"
    assert verdict("overdue_amount", "gt", "0,01", Decimal("0.02")).eligible
    assert verdict("overdue_amount", "eq", "0.1", Decimal("0.10")).eligible  # 0,1 is 0,10: no binary float
    assert verdict("overdue_amount", "gte", "100", Decimal("100.00")).eligible
    assert not verdict("overdue_amount", "gt", "100", Decimal("100.00")).eligible
    assert not verdict("overdue_amount", "gt", "0", None).eligible  # unknown is never more than anything


def test_bool_is():
    assert verdict("vulnerable", "is", "oui", True).eligible
    assert reason("vulnerable", "is", "oui", False) == "Client en situation de fragilité est oui (ici : non)"
    assert verdict("main_residence", "is", "non", False).eligible
    assert reason("main_residence", "is", "non", True) == "Résidence principale est non (ici : oui)"
    assert reason("vulnerable", "is", True, None) == "Client en situation de fragilité est oui (ici : —)"


def test_territory_under_and_not_under():
    for code in LYON:  # the territory itself or any above it
        assert verdict("territory", "under", code, LYON).eligible
        assert not verdict("territory", "not_under", code, LYON).eligible
    # The deepest code names the place in the reason.
    assert reason("territory", "under", "A-LOIRE", LYON) == "Territoire est dans A-LOIRE (ici : C-69123)"
    assert reason("territory", "not_under", "A-LYON", LYON) == "Territoire n'est pas dans A-LYON (ici : C-69123)"
    assert verdict("territory", "not_under", "A-LOIRE", LYON).eligible
    # A code that merely starts like one of the path's is not above it.
    assert not verdict("territory", "under", "A-LY", LYON).eligible
    # No territory at all (no contract, a party without one): under nothing.
    assert reason("territory", "under", "R-ARA", ()) == "Territoire est dans R-ARA (ici : —)"
    assert verdict("territory", "not_under", "R-ARA", ()).eligible


def test_every_failed_condition_is_a_reason_and_the_holding_ones_are_not():
    conditions = parse([
        {"fact": "channel", "op": "in", "value": ["phone"]},
        {"fact": "overdue_amount", "op": "gt", "value": "0"},
        {"fact": "vulnerable", "op": "is", "value": True},
    ])
    result = evaluate(conditions, {"channel": "letter", "overdue_amount": Decimal("12.50"), "vulnerable": False})
    assert not result.eligible
    assert [plain(r) for r in result.reasons] == [
        "Canal du contact est parmi Téléphone (ici : Courrier)",
        "Client en situation de fragilité est oui (ici : non)",
    ]
    holding = evaluate(conditions, {"channel": "phone", "overdue_amount": Decimal("12.50"), "vulnerable": True})
    assert holding.eligible and holding.reasons == []


def test_describe_reads_as_the_administrator_wrote_it():
    [condition] = one("overdue_amount", "gt", "0")
    assert plain(rules.describe(condition)) == "Montant impayé échu > 0,00 €"
    [condition] = one("party_status", "not_in", ["prospect", "former_customer"])
    assert rules.describe(condition) == "Statut du client n'est pas parmi Ancien client, Prospect"


# --- Malformed JSON (an imported or hand-edited rule) ---------------------------------------------

@pytest.mark.parametrize("condition", [
    {"fact": ["channel"], "op": "in", "value": ["phone"]},
    {"fact": {"code": "channel"}, "op": "in", "value": ["phone"]},
    {"fact": "channel", "op": ["in"], "value": ["phone"]},
])
def test_a_fact_or_operator_that_is_not_a_string_is_refused_rather_than_crashing(condition):
    message = refused([VALID, condition])
    assert message.startswith("Condition 2 : ")


def test_a_territory_given_as_a_list_is_refused_rather_than_stored_as_its_repr():
    assert refused([{"fact": "territory", "op": "under", "value": ["A-LYON"]}]).startswith("Condition 1 : ")

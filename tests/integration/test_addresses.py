"""Addresses are checked against La Poste's postal code reference, and give the party's territory."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import load_postal_codes_command, seed_command
from app.db import session
from app.errors import BusinessError
from app.parties.addresses import PostalCode, commune_choices, resolve_address
from app.security.models import Territory
from tests.factories import TerritoryFactory


def _resolve(postal_code: str, city: str = "", street: str = "3 rue de la République", extra: str = ""):
    return resolve_address(street=street, address_extra=extra, postal_code=postal_code, city=city)


@pytest.fixture
def lyon(postal_codes):
    agency = TerritoryFactory(code="AG-T-LYON")
    return TerritoryFactory(code="T-69123", kind="commune", insee_code="69123", parent=agency, name="Lyon")


def test_a_matching_city_is_stored_under_its_official_name_with_its_territory(lyon):
    address = _resolve("42000", "saint etienne", street="  12   rue Michelet ", extra=" Bât. B ")

    assert (address.street, address.address_extra) == ("12 rue Michelet", "Bât. B")
    assert (address.postal_code, address.city, address.insee_code) == ("42000", "Saint-Étienne", "42218")
    assert address.territory_id is None  # no commune territory for Saint-Étienne in this test

    in_lyon = _resolve(" 69003 ", "LYON")
    assert (in_lyon.city, in_lyon.insee_code, in_lyon.territory_id) == ("Lyon", "69123", lyon.id)


def test_an_arrondissement_or_the_routing_label_is_read_as_the_commune(postal_codes):
    assert _resolve("69003", "Lyon 3e arrondissement").insee_code == "69123"
    assert _resolve("75016", "Paris 16ème").city == "Paris"
    assert _resolve("13001", "marseille").insee_code == "13055"
    # The routing label, as written on envelopes.
    routed = _resolve("42130", "STE AGATHE LA BOUTERESSE")
    assert (routed.city, routed.insee_code) == ("Sainte-Agathe-la-Bouteresse", "42197")


def test_an_empty_city_is_filled_when_the_postal_code_has_one_commune(postal_codes):
    assert _resolve("69100", "").city == "Villeurbanne"


def test_an_empty_city_is_refused_when_the_postal_code_has_several_communes(postal_codes):
    assert sum(row["postal_code"] == "42800" for row in postal_codes) > 1
    with pytest.raises(BusinessError) as refused:
        _resolve("42800", "")
    assert refused.value.field == "city"
    assert "Indiquez la commune" in refused.value.message
    assert "Rive-de-Gier" in refused.value.message


def test_a_city_of_another_postal_code_is_refused_with_the_communes_of_the_code(postal_codes):
    with pytest.raises(BusinessError) as refused:
        _resolve("69003", "Villeurbanne")
    assert refused.value.field == "city"
    assert refused.value.message == ("Le code postal 69003 correspond à : Lyon. "
                                     "Corrigez la commune ou le code postal.")


def test_communes_sharing_a_name_under_one_postal_code_are_told_apart_by_department(postal_codes):
    # Thièvres (Pas-de-Calais, 62814) and Thièvres (Somme, 80756) are both served by 62760.
    with pytest.raises(BusinessError) as refused:
        _resolve("62760", "Thièvres")
    assert refused.value.field == "city"
    assert refused.value.message == (
        "Plusieurs communes portent le nom « Thièvres » sous le code postal 62760 : "
        "Thièvres (62, code INSEE 62814), Thièvres (80, code INSEE 80756). "
        "Précisez le département, par exemple « Thièvres (62) ».")
    assert _resolve("62760", "Thièvres (62)").insee_code == "62814"
    assert _resolve("62760", "thievres (80)").insee_code == "80756"
    assert _resolve("62760", "Thièvres (80756)").insee_code == "80756"
    assert _resolve("62760", "Thièvres (80)").city == "Thièvres"
    # The commune already stored settles it when the city is written as it is stored.
    assert resolve_address(street="1 rue Principale", address_extra=None, postal_code="62760", city="Thièvres",
                           insee_code="80756").insee_code == "80756"
    with pytest.raises(BusinessError) as wrong_department:
        _resolve("62760", "Thièvres (59)")
    assert "Thièvres (62, code INSEE 62814), Thièvres (80, code INSEE 80756)" in wrong_department.value.message


def test_the_suggested_communes_tell_apart_those_sharing_a_name(postal_codes):
    names = commune_choices("62760")
    assert "Thièvres (62)" in names and "Thièvres (80)" in names and "Thièvres" not in names
    assert "Amplier" in names
    assert commune_choices("69100") == ["Villeurbanne"]


def test_a_long_list_of_communes_keeps_the_matching_ones(postal_codes):
    # 62760 serves 16 communes: a city of another code lists them all up to the cut, and
    # the ambiguous name is never cut off.
    with pytest.raises(BusinessError) as refused:
        _resolve("62760", "Lyon")
    assert "Amplier" in refused.value.message
    with pytest.raises(BusinessError) as ambiguous:
        _resolve("62760", "THIEVRES")
    assert "Thièvres (80, code INSEE 80756)" in ambiguous.value.message


@pytest.mark.parametrize(("postal_code", "message"), [
    ("", "Le code postal est obligatoire."),
    ("6900", "Code postal invalide : « 6900 » (5 chiffres attendus)."),
    ("69OO3", "Code postal invalide : « 69OO3 » (5 chiffres attendus)."),
    ("69999", "Code postal inconnu : 69999. Vérifiez-le."),
])
def test_a_malformed_or_unknown_postal_code_is_refused(postal_codes, postal_code, message):
    with pytest.raises(BusinessError) as refused:
        _resolve(postal_code, "Lyon")
    assert (refused.value.field, refused.value.message) == ("postal_code", message)


def test_a_too_long_street_is_refused(postal_codes):
    with pytest.raises(BusinessError) as refused:
        _resolve("69003", "Lyon", street="x" * 201)
    assert refused.value.field == "street"


def test_the_territory_is_only_a_commune_territory_with_that_insee_code(postal_codes):
    TerritoryFactory(code="AG-69266", kind="agency", insee_code="69266")  # not a commune
    assert _resolve("69100", "Villeurbanne").territory_id is None


def _write_reference(path, entries):
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_the_load_command_replaces_the_reference_and_maps_arrondissements(app, tmp_path, postal_codes):
    reference = _write_reference(tmp_path / "codes.json", [
        {"codePostal": "69001", "codeCommune": "69381", "nomCommune": "Lyon 1er Arrondissement",
         "libelleAcheminement": "LYON"},
        {"codePostal": "69004", "codeCommune": "69384", "nomCommune": "Lyon 4e Arrondissement",
         "libelleAcheminement": "LYON"},
        {"codePostal": "69100", "codeCommune": "69266", "nomCommune": "Villeurbanne",
         "libelleAcheminement": "VILLEURBANNE"},
    ])
    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(load_postal_codes_command, ["--file", str(reference), "--allow-partial"])
        again = runner.invoke(load_postal_codes_command, ["--file", str(reference), "--allow-partial"])

    assert result.exit_code == 0, result.output
    assert f"{len(postal_codes)} remplacées" in result.output
    assert "3 lignes (3 codes postaux, 2 communes)" in result.output
    assert again.exit_code == 0 and "3 remplacées" in again.output
    rows = session.execute(select(PostalCode.postal_code, PostalCode.insee_code, PostalCode.commune)
                           .order_by(PostalCode.postal_code)).all()
    assert [tuple(r) for r in rows] == [("69001", "69123", "Lyon"), ("69004", "69123", "Lyon"),
                                        ("69100", "69266", "Villeurbanne")]


def test_the_load_command_refuses_an_unreadable_file_and_keeps_the_reference(app, tmp_path, postal_codes):
    broken = tmp_path / "broken.json"
    broken.write_text("[{\"codePostal\": ", encoding="utf-8")
    with app.app_context():
        result = CliRunner().invoke(load_postal_codes_command, ["--file", str(broken)])
    assert result.exit_code == 1
    assert "illisible" in result.output
    assert session.execute(select(func.count()).select_from(PostalCode)).scalar_one() == len(postal_codes)


@pytest.mark.parametrize("entries", [[], [
    {"codePostal": "06000", "codeCommune": "06088", "nomCommune": "Nice", "libelleAcheminement": "NICE"}]])
def test_the_load_command_refuses_a_partial_file_unless_told_and_keeps_the_reference(app, tmp_path, postal_codes,
                                                                                      entries):
    reference = _write_reference(tmp_path / "codes.json", entries)
    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(load_postal_codes_command, ["--file", str(reference)])
    assert result.exit_code == 1
    if entries:
        assert ("ne contient que 1 ligne (au moins 30 000 attendues" in result.output
                and "--allow-partial" in result.output), result.output
    else:
        assert "Fichier des codes postaux vide" in result.output
    assert session.execute(select(func.count()).select_from(PostalCode)).scalar_one() == len(postal_codes)
    with app.app_context():
        forced = runner.invoke(load_postal_codes_command, ["--file", str(reference), "--allow-partial"])
    if entries:
        assert forced.exit_code == 0, forced.output
        assert "Codes postaux : 1 ligne (1 code postal, 1 commune)" in forced.output
        assert session.execute(select(PostalCode.commune)).scalars().all() == ["Nice"]
    else:  # an empty file is never a reference, even a partial one
        assert forced.exit_code == 1 and "vide" in forced.output
        assert session.execute(select(func.count()).select_from(PostalCode)).scalar_one() == len(postal_codes)


def test_the_demo_seed_loads_the_reference_only_when_it_is_empty(app, monkeypatch, tmp_path):
    from app.parties import addresses

    reference = _write_reference(tmp_path / "codes.json", [
        {"codePostal": "06000", "codeCommune": "06088", "nomCommune": "Nice", "libelleAcheminement": "NICE"}])
    monkeypatch.setattr(addresses, "DEFAULT_POSTAL_CODE_FILE", reference)
    runner = CliRunner()
    with app.app_context():
        first = runner.invoke(seed_command, [])
        assert first.exit_code == 0, first.output
        assert "Codes postaux : 1 ligne (1 code postal, 1 commune)." in first.output
        assert session.execute(select(PostalCode.commune)).scalars().all() == ["Nice"]
        assert session.execute(select(Territory.id).where(Territory.insee_code == "06088")).first() is not None

        _write_reference(reference, [])
        second = runner.invoke(seed_command, ["--if-empty"])
    assert second.exit_code == 0, second.output
    assert "Codes postaux" not in second.output
    assert session.execute(select(func.count()).select_from(PostalCode)).scalar_one() == 1

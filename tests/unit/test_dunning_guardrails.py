"""The legal guardrails of dunning (app.dunning.guardrails), at their boundaries: water at a main
residence never cut off nor reduced; no energy cut-off from 1 November to 31 March inclusive; a
vulnerable customer's formal notice only after the social-support step."""
from __future__ import annotations

from datetime import date

import pytest

from app import create_app
from app.dunning.guardrails import cut_off, formal_notice, reduction, truce_end, winter_truce


@pytest.fixture(autouse=True)
def _babel():
    with create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"}).test_request_context():
        yield


@pytest.mark.parametrize(("day", "in_truce"), [
    (date(2026, 10, 31), False), (date(2026, 11, 1), True), (date(2026, 12, 31), True), (date(2027, 1, 1), True),
    (date(2027, 3, 31), True), (date(2027, 4, 1), False), (date(2027, 7, 14), False), (date(2028, 2, 29), True),
])
def test_the_winter_truce_runs_from_1_november_to_31_march_inclusive(day, in_truce):
    assert winter_truce(day) is in_truce


def test_the_truce_ends_on_31_march_of_the_right_year():
    assert truce_end(date(2026, 11, 1)) == date(2027, 3, 31)
    assert truce_end(date(2027, 2, 10)) == date(2027, 3, 31)


@pytest.mark.parametrize("day", [date(2026, 11, 15), date(2027, 6, 15)])
def test_water_at_a_main_residence_is_never_cut_off_nor_reduced(day):
    for rule in (cut_off, reduction):
        verdict = rule(kind="water", main_residence=True, day=day)
        assert not verdict.allowed and "L115-3" in verdict.reason and "résidence principale" in verdict.reason


def test_water_at_a_secondary_residence_may_be_cut_off_even_in_winter():
    assert cut_off(kind="water", main_residence=False, day=date(2026, 12, 1)).allowed


@pytest.mark.parametrize("kind", ["electricity", "gas"])
@pytest.mark.parametrize(("day", "allowed"), [(date(2026, 10, 31), True), (date(2026, 11, 1), False),
                                              (date(2027, 3, 31), False), (date(2027, 4, 1), True)])
def test_no_energy_cut_off_during_the_truce_whatever_the_dwelling(kind, day, allowed):
    for main_residence in (True, False):
        verdict = cut_off(kind=kind, main_residence=main_residence, day=day)
        assert verdict.allowed is allowed
        if not allowed:
            assert "Trêve hivernale" in verdict.reason and "31/03/2027" in verdict.reason


def test_a_vulnerable_customer_goes_through_the_social_step_before_any_formal_notice():
    blocked = formal_notice(vulnerable=True, social_step_done=False)
    assert not blocked.allowed and "FSL" in blocked.reason
    assert formal_notice(vulnerable=True, social_step_done=True).allowed
    assert formal_notice(vulnerable=False, social_step_done=False).allowed

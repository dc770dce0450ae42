"""The legal guardrails of dunning in France, as rules a step can enforce and explain.

- **Water at a main residence** is never cut off nor reduced for non-payment, at any time of year
  (loi n° 2013-312 du 15 avril 2013, « loi Brottes », article L115-3 of the code de l'action
  sociale et des familles, as the Conseil constitutionnel upheld it in 2015).
- **Energy (electricity, gas)** is not cut off for non-payment during the winter truce, from
  1 November to 31 March inclusive (same article), whatever the dwelling.
- **A customer flagged vulnerable** goes through a social-support step (information about the
  Fonds de solidarité pour le logement, FSL, and the CCAS) before any formal notice.

Each rule answers with a ``Verdict``: allowed or not, and the reason in words an agent can read
to the customer. A blocked step is blocked: the process asks ``cut_off`` before offering it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _l

WATER = "water"
ENERGIES = ("electricity", "gas")
TRUCE_START = (11, 1)  # 1 November…
TRUCE_END = (3, 31)  # …to 31 March, both included


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # why not (or what must come first), for the agent and the customer


def winter_truce(day: date) -> bool:
    """True from 1 November to 31 March inclusive."""
    return (day.month, day.day) >= TRUCE_START or (day.month, day.day) <= TRUCE_END


def truce_end(day: date) -> date:
    """The last day of the truce that day falls in (day must be within a truce)."""
    return date(day.year + 1 if day.month >= TRUCE_START[0] else day.year, *TRUCE_END)


def cut_off(*, kind: str, main_residence: bool, day: date) -> Verdict:
    """May the supply of this service point be cut off for non-payment on this day?"""
    if kind == WATER and main_residence:
        return Verdict(False, str(_l("Eau d'une résidence principale : ni coupure ni réduction de débit pour "
                                     "impayé, à aucune période de l'année (article L115-3 du code de l'action "
                                     "sociale et des familles).")))
    if kind in ENERGIES and winter_truce(day):
        return Verdict(False, str(_l("Trêve hivernale : aucune coupure d'énergie pour impayé du 1er novembre au "
                                     "31 mars (article L115-3 du code de l'action sociale et des familles) ; "
                                     "possible à nouveau après le %(day)s.",
                                     day=truce_end(day).strftime("%d/%m/%Y"))))
    return Verdict(True)


def reduction(*, kind: str, main_residence: bool, day: date) -> Verdict:
    """May the supply be reduced (flow or power) for non-payment? Water at a main residence: never."""
    if kind == WATER and main_residence:
        return cut_off(kind=kind, main_residence=main_residence, day=day)
    return Verdict(True)


def formal_notice(*, vulnerable: bool, social_step_done: bool) -> Verdict:
    """May the formal notice be sent? Not to a vulnerable customer before the social-support step."""
    if vulnerable and not social_step_done:
        return Verdict(False, str(_l("Client signalé fragile : l'étape d'accompagnement social (information sur "
                                     "le FSL et le CCAS) précède toute mise en demeure.")))
    return Verdict(True)

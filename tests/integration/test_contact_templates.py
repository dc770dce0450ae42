"""Template proposals on real data (app.contacts.templating): the context's facts, the defaults,
what each source finds, the eligibility of each rule kind, and no link proposed twice."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from app.contacts import templating
from app.contacts.objects import Ref
from app.db import session
from app.dossiers import service as dossiers
from app.dossiers.models import DossierStatus
from app.security.models import Role
from tests.factories import role_with
from tests.integration.contacts_world import NOW, TODAY, build_world, contact_type, dossier_type, item
from tests.integration.contacts_world import party as new_party


@pytest.fixture
def world(app_ctx, frozen_clock, places, customer):
    frozen_clock.current = NOW
    return build_world(places, customer)


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).replace("\u202f", " ").replace("\xa0", " ")).strip()


def context(world, *, agent=None, party="helene", contract="contract", channel="phone", direction="in"):
    return templating.build_context(
        agent=agent or world.agent, party=getattr(world, party) if isinstance(party, str) else party,
        contract=getattr(world, contract) if isinstance(contract, str) else contract, channel=channel,
        direction=direction)


def proposals_of(ctx, *items, defaults=False):
    template = contact_type(*items)
    return templating.propose(ctx, template.items, defaults=defaults)


def targets(proposals) -> list[tuple]:
    """(kind, target, role, origin) of the eligible proposals."""
    return [(p.kind, p.target, p.role, p.origin) for p in proposals if p.eligible]


def only_ineligible(proposals) -> templating.Proposal:
    [proposal] = proposals
    assert not proposal.eligible and proposal.target is None
    assert proposal.reasons
    return proposal


# --- The context --------------------------------------------------------------------------------

def test_the_context_facts_come_from_the_customer_the_contract_and_the_channel(world):
    ctx = context(world, channel="front_desk", direction="out")
    assert ctx.today == TODAY
    assert ctx.territory_path == "/R-ARA/A-LYON/C-69123/"
    assert ctx.facts == {
        "channel": "front_desk", "direction": "out", "party_status": "customer", "vulnerable": False,
        "contract_status": "active", "service_point_kind": "water", "main_residence": True,
        "territory": ("R-ARA", "A-LYON", "C-69123"),
        "overdue_amount": Decimal("114.20"),  # F-1 84,20 + F-2 30,00; not the paid, cancelled or future ones
        "overdue_invoices": 2,
        "open_dossiers": 0, "open_dossier_types": [],
    }
    assert ctx.facts["overdue_amount"] == Decimal("114.20") and str(ctx.facts["overdue_amount"]) == "114.20"


def test_without_a_contract_the_facts_come_from_the_party_alone(world):
    ctx = context(world, party="paul", contract=None, direction="sideways")
    assert ctx.direction == "in"  # an unknown direction is taken as inbound
    assert ctx.territory_path == "/R-ARA/A-LYON/C-69123/"  # the party's own territory
    assert ctx.facts["contract_status"] == "none"
    assert ctx.facts["service_point_kind"] is None and ctx.facts["main_residence"] is False
    # The payer owes the contract's overdue invoices; the owner of the premises does not.
    assert (ctx.facts["overdue_amount"], ctx.facts["overdue_invoices"]) == (Decimal("114.20"), 2)
    owner = context(world, party="sci", contract=None)
    assert (owner.facts["overdue_amount"], owner.facts["overdue_invoices"]) == (Decimal("0.00"), 0)
    nobody = context(world, party=None, contract=None, channel=None)
    assert nobody.territory_path is None and nobody.facts["territory"] == ()
    assert nobody.facts["party_status"] is None and nobody.facts["open_dossiers"] == 0


def test_open_dossiers_count_only_those_not_closed_and_readable(world):
    from app.contacts.links import Links, PartyLink

    claim, plan = dossier_type(label="Réclamation", code="CW-RECLAMATION"), dossier_type(code="CW-PLAN")
    mine = [PartyLink(world.helene.id, "customer")]
    dossiers.open_dossier(agent=world.agent, dossier_type_id=claim.id, links=Links(parties=mine))
    dossiers.open_dossier(agent=world.agent, dossier_type_id=claim.id, links=Links(parties=mine))
    closed = dossiers.open_dossier(agent=world.agent, dossier_type_id=plan.id, links=Links(parties=mine))
    dossiers.change_status(agent=world.colleague, dossier_id=closed.id, status=DossierStatus.CLOSED)
    dossiers.open_dossier(agent=world.agent, dossier_type_id=plan.id,
                          links=Links(parties=[PartyLink(world.paul.id, "customer")]))
    session.commit()
    ctx = context(world)
    assert (ctx.facts["open_dossiers"], ctx.facts["open_dossier_types"]) == (2, ["CW-RECLAMATION"])


# --- Defaults -----------------------------------------------------------------------------------

def test_defaults_are_the_customer_the_agent_as_emitter_and_the_current_contract(world):
    proposals = templating.propose(context(world), [])
    assert targets(proposals) == [
        ("party", world.helene.id, "customer", "default"),
        ("agent", world.agent.id, "emitter", "default"),
        ("object", Ref("contract", world.contract.id), None, "default"),
    ]
    assert [p.display for p in proposals] == ["Mme Hélène Lefèvre", "Alice Accueil", "CW-EAU-1 — Eau — Actif"]
    assert {p.origin_label for p in proposals} == {"Par défaut"}
    assert [p.value for p in proposals] == [f"{world.helene.id}|customer|default", f"{world.agent.id}|emitter|default",
                                            f"contract:{world.contract.id}||default"]


def test_defaults_without_a_contract_or_a_customer(world):
    assert targets(templating.propose(context(world, contract=None), [])) == [
        ("party", world.helene.id, "customer", "default"), ("agent", world.agent.id, "emitter", "default")]
    assert targets(templating.propose(context(world, party=None, contract=None), [])) == [
        ("agent", world.agent.id, "emitter", "default")]


def test_a_template_repeating_the_defaults_proposes_each_link_once_as_a_default(world):
    template = contact_type(item("party", "current_customer"), item("agent", "current_agent", link_role="emitter"),
                            item("object", "current_contract"), item("party", "contract_holder"))
    proposals = templating.propose(context(world), template.items)
    assert targets(proposals) == [
        ("party", world.helene.id, "customer", "default"),
        ("agent", world.agent.id, "emitter", "default"),
        ("object", Ref("contract", world.contract.id), None, "default"),
        # The same customer in another role is another link.
        ("party", world.helene.id, "holder", f"template:{template.items[3].id}"),
    ]
    assert len({p.key for p in proposals}) == len(proposals)


# --- Sources ------------------------------------------------------------------------------------

def test_party_sources(world):
    ctx = context(world)
    items = [item("party", "current_customer", link_role="third_party"), item("party", "contract_holder"),
             item("party", "contract_co_holder"), item("party", "contract_payer"), item("party", "contract_owner"),
             item("party", "contract_payer", link_role="third_party"), item("party", "fixed_party",
                                                                             fixed_party_id=world.ccas.id)]
    proposals = proposals_of(ctx, *items)
    origins = [f"template:{i.id}" for i in items]
    assert targets(proposals) == [
        ("party", world.helene.id, "third_party", origins[0]),
        ("party", world.helene.id, "holder", origins[1]),
        ("party", world.marc.id, "co_holder", origins[2]),
        ("party", world.paul.id, "payer", origins[3]),
        ("party", world.sci.id, "owner", origins[4]),
        ("party", world.paul.id, "third_party", origins[5]),
        ("party", world.ccas.id, "third_party", origins[6]),  # a designated party, whatever the scope
    ]
    assert [p.display for p in proposals][-1] == "CCAS de Saint-Étienne"
    assert proposals[1].origin_label == "Modèle : Le titulaire du contrat courant"


def test_a_contract_role_nobody_holds_or_no_contract_proposes_nothing_and_says_why(world):
    occupant = only_ineligible(proposals_of(context(world), item("party", "contract_occupant")))
    assert occupant.reasons == ["aucun occupant sur le contrat courant"]
    assert occupant.display == "L'occupant du contrat courant"
    holder = only_ineligible(proposals_of(context(world, contract=None), item("party", "contract_holder")))
    assert holder.reasons == ["aucun contrat courant"]
    customer = only_ineligible(proposals_of(context(world, party=None, contract=None),
                                            item("party", "current_customer")))
    assert customer.reasons == ["aucun client courant"]


def test_agent_sources(world):
    ctx = context(world)
    items = [item("agent", "current_agent"), item("agent", "current_agent", link_role="copy"),
             item("agent", "fixed_agent", fixed_agent_id=world.bo_loire.id)]
    assert targets(proposals_of(ctx, *items)) == [
        ("agent", world.agent.id, "responsible", f"template:{items[0].id}"),
        ("agent", world.agent.id, "copy", f"template:{items[1].id}"),
        ("agent", world.bo_loire.id, "responsible", f"template:{items[2].id}"),
    ]
    inactive = only_ineligible(proposals_of(ctx, item("agent", "fixed_agent", fixed_agent_id=world.bo_inactive.id)))
    assert inactive.reasons == ["agent désigné inactif ou absent"]


def _back_office() -> Role:
    return role_with("back_office")


def test_role_in_territory_proposes_the_active_agents_of_the_role_covering_the_premises(world):
    proposals = proposals_of(context(world), item("agent", "role_in_territory", link_role="responsible",
                                                  role_id=_back_office().id))
    # Lyon agency and the region cover the Lyon premises; not Loire, not the Villeurbanne commune,
    # not the deactivated agent, not the accueil agents of Lyon.
    assert [(p.target, p.display, p.role) for p in proposals] == [
        (world.bo_lyon.id, "Bastien Lyon", "responsible"), (world.bo_region.id, "Béatrice Région", "responsible"),
        (world.colleague.id, "Claire Collègue", "responsible")]


def test_role_in_territory_without_contract_uses_the_party_territory_or_the_items_own(world):
    without_contract = proposals_of(context(world, party="bernard", contract=None, agent=world.loire_agent),
                                    item("agent", "role_in_territory", role_id=_back_office().id))
    assert {p.target for p in without_contract} == {world.bo_loire.id, world.bo_region.id}
    fixed = proposals_of(context(world), item("agent", "role_in_territory", role_id=_back_office().id,
                                              territory_id=world.places["villeurbanne"].id))
    assert {p.target for p in fixed} == {world.bo_lyon.id, world.bo_region.id, world.colleague.id,
                                         world.bo_villeurbanne.id}
    homeless = new_party("CW0000099", "Sans", "Territoire", None)
    session.commit()
    nowhere = only_ineligible(proposals_of(context(world, party=homeless, contract=None),
                                           item("agent", "role_in_territory", role_id=_back_office().id)))
    assert nowhere.reasons == ["aucun territoire pour chercher les agents"]
    nobody = only_ineligible(proposals_of(
        context(world, party="bernard", contract=None, agent=world.loire_agent),
        item("agent", "role_in_territory", role_id=role_with("superviseur").id)))  # a role no agent holds
    assert nobody.reasons == ["aucun agent de ce rôle sur le territoire"]


def test_object_sources(world):
    ctx = context(world)
    items = [item("object", "current_contract"), item("object", "current_service_point"),
             item("object", "current_meter"), item("object", "last_invoice"), item("object", "last_reading"),
             item("object", "overdue_invoices")]
    proposals = proposals_of(ctx, *items)
    origins = [f"template:{i.id}" for i in items]
    inv = world.invoices
    assert targets(proposals) == [
        ("object", Ref("contract", world.contract.id), None, origins[0]),
        ("object", Ref("service_point", world.contract.service_point.id), None, origins[1]),
        ("object", Ref("meter", world.meter.id), None, origins[2]),  # the installed one, not the removed one
        ("object", Ref("invoice", inv["F-3"].id), None, origins[3]),
        ("object", Ref("meter_reading", world.last_reading.id), None, origins[4]),
        # The unpaid invoices past their due date, oldest first: not F-0 (paid), F-C (cancelled), F-3 (to come).
        ("object", Ref("invoice", inv["F-1"].id), None, origins[5]),
        ("object", Ref("invoice", inv["F-2"].id), None, origins[5]),
    ]
    shown = [plain(p.display) for p in proposals]
    assert shown[2] == "CW-M-NEW"
    assert shown[3] == "CW-F-3 — 48,00 €, échéance 10 avr. 2026, reste 48,00 €"
    assert shown[4] == "20 févr. 2026 — index 340 (Autorelevé)"


def test_object_sources_that_find_nothing_are_ineligible_with_the_reason(world):
    ctx = context(world, party="bernard", contract="bernard_contract", agent=world.loire_agent)
    expected = {"current_meter": "aucun compteur posé", "last_invoice": "aucune facture",
                "last_reading": "aucune relève", "overdue_invoices": "aucune facture impayée échue"}
    for source, why in expected.items():
        proposal = only_ineligible(proposals_of(ctx, item("object", source)))
        assert proposal.reasons == [why], source
    no_contract = only_ineligible(proposals_of(context(world, contract=None), item("object", "overdue_invoices")))
    assert no_contract.reasons == ["aucun contrat courant"]


def test_objects_are_read_through_the_agents_scope(world):
    # A Loire agent given the Lyon contract (as a forged form would) is proposed none of its invoices.
    ctx = context(world, agent=world.loire_agent)
    assert ctx.facts["overdue_amount"] == Decimal("0.00")
    proposal = only_ineligible(proposals_of(ctx, item("object", "last_invoice")))
    assert proposal.reasons == ["aucune facture"]


# --- Eligibility, per rule kind -----------------------------------------------------------------

RULES = [
    # (rule, context arguments, eligible, reason when not)
    ([{"fact": "channel", "op": "in", "value": ["phone", "front_desk"]}], {}, True, None),
    ([{"fact": "channel", "op": "in", "value": ["phone", "front_desk"]}], {"channel": "letter"}, False,
     "Canal du contact est parmi Accueil physique, Téléphone (ici : Courrier)"),
    ([{"fact": "direction", "op": "in", "value": ["out"]}], {"direction": "out"}, True, None),
    ([{"fact": "direction", "op": "in", "value": ["out"]}], {}, False,
     "Sens du contact est parmi Sortant (ici : Entrant)"),
    ([{"fact": "contract_status", "op": "in", "value": ["active"]}], {}, True, None),
    ([{"fact": "contract_status", "op": "in", "value": ["active"]}], {"contract": None}, False,
     "Statut du contrat courant est parmi Actif (ici : Aucun contrat courant)"),
    ([{"fact": "contract_status", "op": "in", "value": ["none"]}], {"contract": None}, True, None),
    ([{"fact": "contract_status", "op": "in", "value": ["none"]}], {}, False,
     "Statut du contrat courant est parmi Aucun contrat courant (ici : Actif)"),
    ([{"fact": "territory", "op": "under", "value": "A-LYON"}], {}, True, None),
    ([{"fact": "territory", "op": "under", "value": "A-LOIRE"}], {}, False,
     "Territoire est dans A-LOIRE (ici : C-69123)"),
    ([{"fact": "territory", "op": "not_under", "value": "A-LOIRE"}], {}, True, None),
    ([{"fact": "territory", "op": "not_under", "value": "R-ARA"}], {}, False,
     "Territoire n'est pas dans R-ARA (ici : C-69123)"),
    ([{"fact": "territory", "op": "under", "value": "A-LOIRE"}],
     {"party": "bernard", "contract": "bernard_contract", "agent": "loire_agent"}, True, None),
    ([{"fact": "overdue_amount", "op": "gt", "value": "0"}], {}, True, None),
    ([{"fact": "overdue_amount", "op": "gte", "value": "114,20"}], {}, True, None),
    ([{"fact": "overdue_amount", "op": "gt", "value": "114,20"}], {}, False,
     "Montant impayé échu > 114,20 € (ici : 114,20 €)"),
    ([{"fact": "overdue_amount", "op": "gt", "value": "0"}],
     {"party": "bernard", "contract": "bernard_contract", "agent": "loire_agent"}, False,
     "Montant impayé échu > 0,00 € (ici : 0,00 €)"),
    ([{"fact": "overdue_invoices", "op": "eq", "value": "2"}], {}, True, None),
    ([{"fact": "overdue_invoices", "op": "gte", "value": "3"}], {}, False,
     "Nombre de factures impayées échues ≥ 3 (ici : 2)"),
    ([{"fact": "vulnerable", "op": "is", "value": "non"}], {}, True, None),
    ([{"fact": "vulnerable", "op": "is", "value": "oui"}], {}, False,
     "Client en situation de fragilité est oui (ici : masqué)"),
    ([{"fact": "main_residence", "op": "is", "value": "oui"}], {}, True, None),
    ([{"fact": "main_residence", "op": "is", "value": "oui"}], {"contract": None}, False,
     "Résidence principale est oui (ici : non)"),
    ([{"fact": "party_status", "op": "in", "value": ["customer"]}], {}, True, None),
    ([{"fact": "party_status", "op": "in", "value": ["customer"]}], {"party": "ccas", "contract": None}, False,
     "Statut du client est parmi Client (ici : Prospect)"),
    ([{"fact": "service_point_kind", "op": "in", "value": ["water"]}], {}, True, None),
    ([{"fact": "service_point_kind", "op": "not_in", "value": ["water"]}], {}, False,
     "Énergie du contrat courant n'est pas parmi Eau (ici : Eau)"),
    ([{"fact": "open_dossiers", "op": "eq", "value": "0"}], {}, True, None),
    ([{"fact": "open_dossiers", "op": "gt", "value": "0"}], {}, False,
     "Nombre de dossiers en cours du client > 0 (ici : 0)"),
    ([{"fact": "open_dossier_types", "op": "excludes", "value": ["RECLAMATION"]}], {}, True, None),
    ([{"fact": "open_dossier_types", "op": "includes", "value": ["RECLAMATION"]}], {}, False,
     "Classifications des dossiers en cours comprend RECLAMATION (ici : aucun)"),
]


@pytest.mark.parametrize(("rule", "arguments", "eligible", "why"), RULES)
def test_each_rule_kind_decides_eligibility_and_says_why_not(world, rule, arguments, eligible, why):
    arguments = dict(arguments)
    if "agent" in arguments:
        arguments["agent"] = getattr(world, arguments["agent"])
    template_item = item("agent", "current_agent", link_role="copy", rule=rule)
    ctx = context(world, **arguments)
    proposals = proposals_of(ctx, template_item)
    assert len(proposals) == 1
    [proposal] = proposals
    assert proposal.eligible is eligible
    assert proposal.origin == f"template:{template_item.id}"
    if eligible:
        assert (proposal.target, proposal.role, proposal.reasons) == (ctx.agent.id, "copy", [])
    else:
        assert proposal.target is None and proposal.role == "copy"
        assert [plain(r) for r in proposal.reasons] == [why]
        assert proposal.display == "L'agent connecté"


def test_open_dossier_rules_see_the_customers_open_dossiers(world):
    from app.contacts.links import Links, PartyLink

    claim = dossier_type(label="Réclamation", code="CW-RECL")
    dossiers.open_dossier(agent=world.agent, dossier_type_id=claim.id,
                          links=Links(parties=[PartyLink(world.helene.id, "customer")]))
    session.commit()
    ctx = context(world)
    busy = item("object", "last_invoice", rule=[{"fact": "open_dossier_types", "op": "includes", "value": ["CW-RECL"]},
                                                {"fact": "open_dossiers", "op": "gte", "value": 1}])
    free = item("object", "last_invoice", rule=[{"fact": "open_dossier_types", "op": "excludes",
                                                 "value": ["CW-RECL"]}])
    first, second = proposals_of(ctx, busy, free)
    assert first.eligible and first.target == Ref("invoice", world.invoices["F-3"].id)
    assert not second.eligible
    assert second.reasons == ["Classifications des dossiers en cours ne comprend pas CW-RECL (ici : CW-RECL)"]


def test_an_ineligible_item_is_kept_even_next_to_an_eligible_one_of_the_same_source(world):
    eligible = item("object", "overdue_invoices", rule=[{"fact": "overdue_amount", "op": "gt", "value": "0"}])
    ineligible = item("object", "overdue_invoices", rule=[{"fact": "channel", "op": "in", "value": ["letter"]}])
    proposals = templating.propose(context(world), contact_type(eligible, ineligible).items)
    assert [(p.origin, p.eligible) for p in proposals if p.kind == "object"] == [
        ("default", True), (f"template:{eligible.id}", True), (f"template:{eligible.id}", True),
        (f"template:{ineligible.id}", False)]


def test_the_demo_referentials_rules_parse_and_propose(world):
    from app.contacts import rules
    from app.contacts.models import ContactType
    from app.seed.referentials import seed_referentials

    seed_referentials()
    session.commit()
    paying = session.query(ContactType).filter_by(code="DIFFICULTE_PAIEMENT").one()
    for template_item in paying.items:
        rules.parse(template_item.rule)
    proposals = templating.propose(context(world, channel="letter"), paying.items)
    payer, *overdue, back_office = [p for p in proposals if p.origin.startswith("template:")]
    assert (payer.target, payer.role) == (world.paul.id, "payer")
    assert [p.target for p in overdue] == [Ref("invoice", world.invoices["F-1"].id),
                                           Ref("invoice", world.invoices["F-2"].id)]
    assert not back_office.eligible  # the back office is called in for phone and front desk contacts only
    assert [plain(r) for r in back_office.reasons] == [
        "Canal du contact est parmi Accueil physique, Téléphone (ici : Courrier)"]


def test_role_in_territory_reads_an_underscore_in_a_territory_code_literally(world):
    # Territory codes may hold "_" (app.security.service.CODE_RE); the premises' path must start
    # with the agent's territory path character for character, not as a LIKE pattern.
    from tests.factories import AgentFactory, TerritoryFactory

    region = world.places["region"]
    wildcard_agency = TerritoryFactory(parent=region, code="AG_1")
    other_agency = TerritoryFactory(parent=region, code="AGX1")
    commune = TerritoryFactory(parent=other_agency, kind="commune", code="C-AGX1")
    AgentFactory(full_name="Aurélien Souligné", roles=[_back_office()], territories=[wildcard_agency])
    customer = new_party("CW0000098", "Client", "AGX1", commune)
    session.commit()
    proposals = proposals_of(context(world, party=customer, contract=None),
                             item("agent", "role_in_territory", role_id=_back_office().id))
    assert {p.display for p in proposals} == {"Béatrice Région"}  # the region covers it; agency AG_1 does not


def test_a_rule_on_the_vulnerability_flag_does_not_tell_it_to_an_agent_without_the_permission(world):
    """The flag still decides (business logic reads it), but the reason an agent reads says « masqué »
    unless the agent holds party.sensitive (app.parties.sensitive)."""
    from app.parties import sensitive
    from tests.factories import AgentFactory, role_with

    world.helene.vulnerable = True
    session.commit()
    rule = [{"fact": "vulnerable", "op": "is", "value": "non"}]
    assert not sensitive.may_see(world.agent)
    [hidden] = proposals_of(context(world), item("agent", "current_agent", link_role="copy", rule=rule))
    assert not hidden.eligible
    assert [plain(r) for r in hidden.reasons] == ["Client en situation de fragilité est non (ici : masqué)"]
    back_office = AgentFactory(roles=[role_with("back_office")], territories=world.agent.territories)
    [shown] = proposals_of(context(world, agent=back_office),
                           item("agent", "current_agent", link_role="copy", rule=rule))
    assert [plain(r) for r in shown.reasons] == ["Client en situation de fragilité est non (ici : oui)"]

"""Contact types, dossier classifications and their template items: the rules and the writes.

Functions flush; the caller commits, so a refused request leaves nothing behind. Types and
classifications are never deleted (contacts and dossiers refer to them): they are deactivated.
Template items are configuration: they are deleted outright. Every write is audited by the models.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.contacts import rules, templating
from app.contacts.models import AgentLinkRole, ContactType, Direction, PartyLinkRole, TemplateItem, TemplateItemKind
from app.db import session
from app.dossiers.models import DossierType
from app.errors import BusinessError
from app.labels import CHANNELS, label
from app.parties.editing import clean_text
from app.parties.models import Party, PartyKind
from app.processes import definitions
from app.security.models import Agent, Role, Territory

CODE_RE = re.compile(r"^[A-Z0-9_]{2,40}$")
LABEL_MAX = 200
PROCESS_KEY_MAX = 100
POSITION_MAX = 9999
TARGET_DAYS_MAX = 3650
VALUE_MAX = 500

KIND_LABELS = {
    TemplateItemKind.PARTY: _l("Interlocuteur"),
    TemplateItemKind.AGENT: _l("Agent"),
    TemplateItemKind.OBJECT: _l("Objet métier"),
}
# The link roles an item of each kind may give; objects have none.
LINK_ROLES = {
    TemplateItemKind.PARTY: PartyLinkRole.ALL,
    TemplateItemKind.AGENT: AgentLinkRole.ALL,
    TemplateItemKind.OBJECT: (),
}
LINK_ROLE_LABELS = {TemplateItemKind.PARTY: "party_link_role", TemplateItemKind.AGENT: "agent_link_role"}

Owner = ContactType | DossierType


# --- Reads ------------------------------------------------------------------------------------

def list_contact_types() -> list[ContactType]:
    """Every contact type, active or not, in display order."""
    stmt = select(ContactType).order_by(ContactType.position, ContactType.label, ContactType.id)
    return list(session.execute(stmt).scalars())


def list_dossier_types() -> list[DossierType]:
    """Every dossier classification, active or not, in display order."""
    stmt = select(DossierType).order_by(DossierType.position, DossierType.label, DossierType.id)
    return list(session.execute(stmt).scalars())


def get_contact_type(*, type_id: int) -> ContactType | None:
    return session.get(ContactType, type_id)


def get_dossier_type(*, type_id: int) -> DossierType | None:
    return session.get(DossierType, type_id)


def get_item(*, owner: Owner, item_id: int) -> TemplateItem | None:
    """The template item of owner with this id, or None (an item of another owner is None too)."""
    return next((item for item in owner.items if item.id == item_id), None)


# --- Shared checks ----------------------------------------------------------------------------

def _clean_code(code: str | None, *, model: type[Owner]) -> str:
    code = (code or "").strip().upper()
    if not CODE_RE.match(code):
        raise BusinessError(_l("Code invalide : 2 à 40 caractères, lettres majuscules, chiffres ou « _ »."),
                            field="code")
    if session.execute(select(model.id).where(model.code == code)).first() is not None:
        raise BusinessError(_l("Ce code est déjà utilisé."), field="code")
    return code


def _clean_label(value: str | None) -> str:
    value = clean_text(value)
    if not value:
        raise BusinessError(_l("Donnez un libellé."), field="label")
    if len(value) > LABEL_MAX:
        raise BusinessError(_l("Le libellé tient en %(max)d caractères.", max=LABEL_MAX), field="label")
    return value


def _clean_process_key(value: str | None) -> str | None:
    """A deployed process's key: a type naming another would fail at its first "Plan d'action"."""
    value = (value or "").strip() or None
    if value and len(value) > PROCESS_KEY_MAX:
        raise BusinessError(_l("La clé du processus tient en %(max)d caractères.", max=PROCESS_KEY_MAX),
                            field="process_key")
    if value and definitions.latest(value) is None:
        raise BusinessError(_l("Aucun processus déployé ne porte la clé « %(key)s » (voir « flask processes "
                               "deploy »).", key=value), field="process_key")
    return value


def _clean_position(value: int | None, *, model: type[Owner], current: Owner | None) -> int:
    """The given position; else the current one, or for a new type the next after the last."""
    if value is None and current is not None:
        return current.position
    if value is None:
        last = session.execute(select(func.max(model.position))).scalar_one_or_none()
        return 0 if last is None else last + 1
    if not 0 <= value <= POSITION_MAX:
        raise BusinessError(_l("L'ordre est un nombre entre 0 et %(max)d.", max=POSITION_MAX), field="position")
    return value


def _insert_unique(obj: Owner) -> None:
    """Insert obj; a concurrent insert of the same code becomes a clear refusal, not a 500."""
    try:
        with session.begin_nested():
            session.add(obj)
    except IntegrityError as exc:
        raise BusinessError(_l("Ce code est déjà utilisé."), field="code") from exc


# --- Contact types ----------------------------------------------------------------------------

def _contact_type_fields(*, current: ContactType | None, label: str | None, default_channel: str | None,
                         default_direction: str | None, process_key: str | None, dossier_type_id: int | None,
                         active: bool, position: int | None) -> dict:
    default_channel = default_channel or None
    if default_channel is not None and default_channel not in CHANNELS:
        raise BusinessError(_l("Canal inconnu."), field="default_channel")
    if default_direction not in Direction.ALL:
        raise BusinessError(_l("Choisissez le sens par défaut."), field="default_direction")
    if dossier_type_id is not None:
        dossier_type = get_dossier_type(type_id=dossier_type_id)
        # A classification deactivated since it was chosen may stay; it cannot be newly chosen.
        unchanged = current is not None and current.dossier_type_id == dossier_type_id
        if dossier_type is None or not (dossier_type.active or unchanged):
            raise BusinessError(_l("Choisissez une classification active."), field="dossier_type")
    return {
        "label": _clean_label(label),
        "default_channel": default_channel,
        "default_direction": default_direction,
        "process_key": _clean_process_key(process_key),
        "dossier_type_id": dossier_type_id,
        "active": bool(active),
        "position": _clean_position(position, model=ContactType, current=current),
    }


def create_contact_type(*, code: str | None, label: str | None, default_channel: str | None,
                        default_direction: str | None, process_key: str | None = None,
                        dossier_type_id: int | None = None, active: bool = True,
                        position: int | None = None) -> ContactType:
    """Create a contact type; its code is checked here and never changes afterwards."""
    code = _clean_code(code, model=ContactType)
    fields = _contact_type_fields(current=None, label=label, default_channel=default_channel,
                                  default_direction=default_direction, process_key=process_key,
                                  dossier_type_id=dossier_type_id, active=active, position=position)
    contact_type = ContactType(code=code, **fields)
    _insert_unique(contact_type)
    return contact_type


def update_contact_type(*, contact_type: ContactType, label: str | None, default_channel: str | None,
                        default_direction: str | None, process_key: str | None, dossier_type_id: int | None,
                        active: bool, position: int | None) -> None:
    """Change a contact type (not its code); inactive, it leaves the contact capture."""
    fields = _contact_type_fields(current=contact_type, label=label, default_channel=default_channel,
                                  default_direction=default_direction, process_key=process_key,
                                  dossier_type_id=dossier_type_id, active=active, position=position)
    for key, value in fields.items():
        setattr(contact_type, key, value)
    session.flush()


# --- Dossier classifications ------------------------------------------------------------------

def _dossier_type_fields(*, current: DossierType | None, label: str | None, process_key: str | None,
                         target_days: int | None, active: bool, position: int | None,
                         auto_start: bool = False, one_per_contract: bool = False,
                         suspends_dunning: bool = False) -> dict:
    if target_days is not None and not 1 <= target_days <= TARGET_DAYS_MAX:
        raise BusinessError(_l("Le délai cible est un nombre de jours entre 1 et %(max)d.", max=TARGET_DAYS_MAX),
                            field="target_days")
    process_key = _clean_process_key(process_key)
    if auto_start and not process_key:
        raise BusinessError(_l("Indiquez le processus à lancer à l'ouverture des dossiers."), field="process_key")
    if current is not None and current.one_per_contract and not one_per_contract and _dunning_uses(current):
        raise BusinessError(_l("La procédure de relance ouvre ses dossiers dans cette classification : elle doit "
                               "garder un seul dossier ouvert par contrat."), field="one_per_contract")
    return {
        "one_per_contract": bool(one_per_contract),
        "suspends_dunning": bool(suspends_dunning),
        "label": _clean_label(label),
        "process_key": process_key,
        "auto_start": bool(auto_start),
        "target_days": target_days,
        "active": bool(active),
        "position": _clean_position(position, model=DossierType, current=current),
    }


def _dunning_uses(dossier_type: DossierType) -> bool:
    from app.dunning.models import DunningProcedure

    return session.execute(select(DunningProcedure.id).where(
        DunningProcedure.dossier_type_id == dossier_type.id, DunningProcedure.active.is_(True)).limit(1)).first() \
        is not None


def create_dossier_type(*, code: str | None, label: str | None, process_key: str | None = None,
                        target_days: int | None = None, active: bool = True,
                        position: int | None = None, auto_start: bool = False, one_per_contract: bool = False,
                        suspends_dunning: bool = False) -> DossierType:
    """Create a dossier classification; its code is checked here and never changes afterwards."""
    code = _clean_code(code, model=DossierType)
    fields = _dossier_type_fields(current=None, label=label, process_key=process_key, target_days=target_days,
                                  active=active, position=position, auto_start=auto_start,
                                  one_per_contract=one_per_contract, suspends_dunning=suspends_dunning)
    dossier_type = DossierType(code=code, **fields)
    _insert_unique(dossier_type)
    return dossier_type


def update_dossier_type(*, dossier_type: DossierType, label: str | None, process_key: str | None,
                        target_days: int | None, active: bool, position: int | None,
                        auto_start: bool = False, one_per_contract: bool = False,
                        suspends_dunning: bool = False) -> None:
    """Change a dossier classification (not its code)."""
    fields = _dossier_type_fields(current=dossier_type, label=label, process_key=process_key,
                                  target_days=target_days, active=active, position=position, auto_start=auto_start,
                                  one_per_contract=one_per_contract, suspends_dunning=suspends_dunning)
    for key, value in fields.items():
        setattr(dossier_type, key, value)
    session.flush()


# --- Eligibility rules as rows ----------------------------------------------------------------

@dataclass(frozen=True)
class ConditionRow:
    """One condition as the form edits it: a fact, an operator and the value as typed."""

    fact: str
    op: str
    value: str

    @property
    def is_empty(self) -> bool:
        return not self.fact and not self.value.strip()


def rule_from_rows(rows: list[ConditionRow]) -> list[dict] | None:
    """The rule of the submitted rows, empty rows ignored; a BusinessError on "rule" names the
    faulty row by its number on the form."""
    used_territories = {row.value.strip() for row in rows
                        if row.fact in rules.FACTS and rules.FACTS[row.fact].type == "territory"}
    known = set(session.execute(select(Territory.code).where(Territory.code.in_(used_territories))).scalars()) \
        if used_territories else set()
    conditions = []
    for number, row in enumerate(rows, start=1):
        if row.is_empty:
            continue
        try:
            if not row.fact:
                raise rules.RuleError(_("choisissez un critère."))
            if not row.op:
                raise rules.RuleError(_("choisissez un opérateur."))
            if len(row.value) > VALUE_MAX:
                raise rules.RuleError(_("la valeur tient en %(max)d caractères.", max=VALUE_MAX))
            conditions.append(rules.parse_condition({"fact": row.fact, "op": row.op, "value": row.value},
                                                    known_territories=known))
        except rules.RuleError as exc:
            raise BusinessError(_("Condition %(number)d : %(error)s", number=number, error=exc), field="rule") from None
    return rules.to_json(conditions)


def _value_text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    return str(value)


def rows_from_rule(rule: list | None) -> list[ConditionRow]:
    """The stored rule as form rows; a rule that no longer reads (it should not happen) as its raw parts."""
    try:
        conditions = rules.parse(rule)
    except rules.RuleError:
        return [ConditionRow(str(c.get("fact", "")), str(c.get("op", "")), str(c.get("value", "")))
                for c in rule or [] if isinstance(c, dict)]
    return [ConditionRow(c.fact, c.op, _value_text(c.value)) for c in conditions]


def describe_rule(rule: list | None) -> list[str]:
    """Each condition of a stored rule as people read it; an empty list for "always"."""
    try:
        return [rules.describe(condition) for condition in rules.parse(rule)]
    except rules.RuleError as exc:
        return [str(exc)]


# --- Template items ---------------------------------------------------------------------------

def _fixed_party(number: str | None) -> Party:
    number = (number or "").strip()
    if not number:
        raise BusinessError(_l("Donnez le n° client de l'interlocuteur désigné."), field="fixed_party")
    # Only organisations (a social-services office, a housing body, a bailiff): a designer holds no
    # territory and must not be able to look private customers up by number.
    party = session.execute(select(Party).where(Party.number.in_({number, number.upper()}),
                                                Party.kind == PartyKind.ORGANISATION)).scalars().first()
    if party is None:
        raise BusinessError(_l("Aucun organisme n'a le n° %(number)s (un interlocuteur désigné est un organisme, "
                               "pas un particulier).", number=number), field="fixed_party")
    return party


def _fixed_agent(login: str | None) -> Agent:
    login = (login or "").strip().lower()
    if not login:
        raise BusinessError(_l("Donnez l'identifiant de l'agent désigné."), field="fixed_agent")
    agent = session.execute(select(Agent).where(Agent.login == login)).scalar_one_or_none()
    if agent is None:
        raise BusinessError(_l("Aucun agent n'a l'identifiant %(login)s.", login=login), field="fixed_agent")
    if not agent.active:
        raise BusinessError(_l("L'agent %(login)s est désactivé.", login=login), field="fixed_agent")
    return agent


def _role_and_territory(role_code: str | None, territory_code: str | None) -> tuple[Role, Territory | None]:
    if not role_code:
        raise BusinessError(_l("Choisissez le rôle des agents à proposer."), field="role")
    role = session.execute(select(Role).where(Role.code == role_code)).scalar_one_or_none()
    if role is None:
        raise BusinessError(_l("Rôle inconnu : %(code)s.", code=role_code), field="role")
    territory = None
    if territory_code:
        territory = session.execute(select(Territory).where(Territory.code == territory_code)).scalar_one_or_none()
        if territory is None:
            raise BusinessError(_l("Territoire inconnu : %(code)s.", code=territory_code), field="territory")
    return role, territory


def _item_fields(*, kind: str | None, source: str | None, link_role: str | None, fixed_party_number: str | None,
                 fixed_agent_login: str | None, role_code: str | None, territory_code: str | None,
                 rule_rows: list[ConditionRow]) -> dict:
    """The checked columns of a template item; fields the source does not use are cleared."""
    if kind not in TemplateItemKind.ALL:
        raise BusinessError(_l("Choisissez la nature de l'élément."), field="kind")
    if source not in templating.SOURCES[kind]:
        shown = label(source, "template_source") if source else "—"
        raise BusinessError(_l("La source « %(source)s » ne convient pas à un élément de nature « %(kind)s ».",
                               source=shown, kind=KIND_LABELS[kind]), field="source")
    link_role = link_role or None
    if link_role is not None and link_role not in LINK_ROLES[kind]:
        if kind == TemplateItemKind.OBJECT:
            raise BusinessError(_l("Un objet métier n'a pas de rôle : laissez le rôle vide."), field="link_role")
        raise BusinessError(_l("Ce rôle ne convient pas à un élément de nature « %(kind)s ».",
                               kind=KIND_LABELS[kind]), field="link_role")
    fields: dict = {"kind": kind, "source": source, "link_role": link_role, "fixed_party": None,
                    "fixed_agent": None, "role": None, "territory": None}
    if source == "fixed_party":
        fields["fixed_party"] = _fixed_party(fixed_party_number)
    elif source == "fixed_agent":
        fields["fixed_agent"] = _fixed_agent(fixed_agent_login)
    elif source == "role_in_territory":
        fields["role"], fields["territory"] = _role_and_territory(role_code, territory_code)
    fields["rule"] = rule_from_rows(rule_rows)
    return fields


def save_item(*, owner: Owner, item: TemplateItem | None, kind: str | None, source: str | None,
              link_role: str | None = None, fixed_party_number: str | None = None,
              fixed_agent_login: str | None = None, role_code: str | None = None,
              territory_code: str | None = None, rule_rows: list[ConditionRow] = ()) -> TemplateItem:
    """Add a template item to owner (item None, at the end) or change one of its items. Every check
    runs before the first write."""
    fields = _item_fields(kind=kind, source=source, link_role=link_role, fixed_party_number=fixed_party_number,
                          fixed_agent_login=fixed_agent_login, role_code=role_code, territory_code=territory_code,
                          rule_rows=list(rule_rows))
    if item is None:
        item = TemplateItem(position=max((i.position for i in owner.items), default=-1) + 1)
        owner.items.append(item)
    for key, value in fields.items():
        setattr(item, key, value)
    session.flush()
    return item


def _in_order(owner: Owner) -> list[TemplateItem]:
    return sorted(owner.items, key=lambda i: (i.position, i.id or 0))


def _renumber(items: list[TemplateItem]) -> None:
    for position, item in enumerate(items):
        if item.position != position:
            item.position = position


def delete_item(*, owner: Owner, item: TemplateItem) -> None:
    """Remove a template item; the remaining ones keep their order."""
    # Deleted explicitly: a row removed only as an orphan of the collection is deleted by the flush
    # without passing through session.deleted, where the audit hook looks for deletions.
    session.delete(item)
    owner.items.remove(item)
    _renumber(_in_order(owner))
    session.flush()


def move_item(*, owner: Owner, item: TemplateItem, step: int) -> None:
    """Move a template item one place up (step -1) or down (+1) in its template."""
    items = _in_order(owner)
    index = items.index(item)
    target = index + step
    if 0 <= target < len(items):
        items[index], items[target] = items[target], items[index]
    _renumber(items)
    session.flush()

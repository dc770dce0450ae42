"""Forms of the referentials pages. The service holds the rules; the forms only carry the input."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from app.contacts import rules, templating
from app.contacts.models import TemplateItemKind
from app.labels import LABELS
from app.referentials.service import KIND_LABELS, LINK_ROLE_LABELS

NONE_CHOICE = SelectChoice("", "—")


# Choices are callables, read when the form renders: their labels in the reader's language, as
# plain strings (a lazy string passes as markup, and "<" must be escaped).

def _fact_choices() -> list[SelectChoice]:
    return [NONE_CHOICE, *(SelectChoice(f.code, str(f.label)) for f in rules.FACTS.values())]


def _operator_choices() -> list[SelectChoice]:
    # One list for every fact type (numbers and amounts share theirs): without a script the list
    # cannot follow the chosen fact, and the service says which operators a fact accepts.
    seen: dict[str, str] = {}
    for operators in rules.OPERATORS.values():
        for code, text in operators.items():
            seen.setdefault(code, str(text))
    return [NONE_CHOICE, *(SelectChoice(code, text) for code, text in seen.items())]


class ConditionForm(Form):
    """One row of an eligibility rule; a row left empty is ignored."""

    fact = SelectField(_l("Critère"), validate_choice=False, choices=_fact_choices)
    op = SelectField(_l("Opérateur"), validate_choice=False, choices=_operator_choices)
    value = StringField(_l("Valeur"), validators=[Length(max=500)])


def _kind_choices() -> list[SelectChoice]:
    return [SelectChoice(kind, str(KIND_LABELS[kind])) for kind in TemplateItemKind.ALL]


def _source_choices() -> list[SelectChoice]:
    return [NONE_CHOICE, *(SelectChoice(source, str(LABELS["template_source"][source]),
                                        optgroup=str(KIND_LABELS[kind]))
                           for kind, sources in templating.SOURCES.items() for source in sources)]


def _link_role_choices() -> list[SelectChoice]:
    return [NONE_CHOICE, *(SelectChoice(code, str(text), optgroup=str(KIND_LABELS[kind]))
                           for kind, labels_kind in LINK_ROLE_LABELS.items()
                           for code, text in LABELS[labels_kind].items())]


def _channel_choices() -> list[SelectChoice]:
    return [NONE_CHOICE, *(SelectChoice(code, str(text)) for code, text in LABELS["channel"].items())]


def _direction_choices() -> list[SelectChoice]:
    return [SelectChoice(code, str(text)) for code, text in LABELS["direction"].items()]


class TemplateItemForm(FlaskForm):
    kind = SelectField(_l("Nature"), validate_choice=False, choices=_kind_choices)
    source = SelectField(_l("Source"), validate_choice=False, choices=_source_choices,
                         description=_l("Parmi les sources de la nature choisie."))
    link_role = SelectField(_l("Rôle du lien"), validate_choice=False, choices=_link_role_choices,
                            description=_l("Vide : le rôle habituel de la source. Aucun pour un objet métier."))
    fixed_party = StringField(_l("N° client de l'interlocuteur désigné"), validators=[Length(max=20)],
                              description=_l("Pour la source « Un interlocuteur désigné »."))
    fixed_agent = StringField(_l("Identifiant de l'agent désigné"), validators=[Length(max=64)],
                              description=_l("Pour la source « Un agent désigné »."))
    role = SelectField(_l("Rôle des agents"), validate_choice=False, choices=[],
                       description=_l("Pour la source « Les agents d'un rôle sur le territoire »."))
    territory = SelectField(_l("Territoire"), validate_choice=False, choices=[],
                            description=_l("Vide : le territoire du client."))
    conditions = FieldList(FormField(ConditionForm), min_entries=1, max_entries=30)


class _TypeForm(FlaskForm):
    label = StringField(_l("Libellé"), validators=[Length(max=200)])
    process_key = StringField(_l("Clé du processus"), validators=[Length(max=100)],
                              description=_l("Le processus lancé par le moteur de processus (facultatif)."))
    active = BooleanField(_l("Actif"), default=True)
    position = IntegerField(_l("Ordre d'affichage"), validators=[Optional(), NumberRange(min=0, max=9999)])


CODE_DESCRIPTION = _l("Lettres majuscules, chiffres et « _ » ; il ne change plus après la création.")


class ContactTypeForm(_TypeForm):
    default_channel = SelectField(_l("Canal par défaut"), validate_choice=False, choices=_channel_choices)
    default_direction = SelectField(_l("Sens par défaut"), validate_choice=False, choices=_direction_choices)
    dossier_type = SelectField(_l("Classification de dossier proposée"), validate_choice=False, choices=[])


class NewContactTypeForm(ContactTypeForm):
    code = StringField(_l("Code"), validators=[Length(max=40)], description=CODE_DESCRIPTION)


class DossierTypeForm(_TypeForm):
    target_days = IntegerField(_l("Délai cible (jours)"), validators=[Optional(), NumberRange(min=1, max=3650)])
    auto_start = BooleanField(_l("Lancer le processus à l'ouverture du dossier"),
                              description=_l("À la main, depuis un contact ou par un traitement automatique."))
    one_per_contract = BooleanField(
        _l("Un seul dossier ouvert par contrat"),
        description=_l("La base refuse un second dossier ouvert de cette classification sur un même contrat (les "
                       "relances d'impayés). S'applique aux dossiers ouverts à partir de maintenant."))
    suspends_dunning = BooleanField(
        _l("Suspend la relance des factures du dossier"),
        description=_l("Tant qu'un dossier de cette classification est ouvert sur une facture (une contestation), "
                       "la relance ne la réclame pas."))


class NewDossierTypeForm(DossierTypeForm):
    code = StringField(_l("Code"), validators=[Length(max=40)], description=CODE_DESCRIPTION)

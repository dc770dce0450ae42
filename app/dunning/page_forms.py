"""The forms of the dunning pages (app.dunning.pages); the rules live in app.dunning.editing."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional


class ProcedureForm(FlaskForm):
    label = StringField(_l("Libellé"), validators=[Length(max=200)])
    grace_days = IntegerField(_l("Délai de grâce (jours)"), validators=[Optional()],
                              description=_l("Après l'échéance, le temps laissé à un paiement en route ; les délais "
                                             "des niveaux comptent après lui."))
    dossier_type_id = SelectField(_l("Classification des dossiers ouverts"), coerce=int, validate_choice=False,
                                  choices=[])
    active = BooleanField(_l("Procédure active (une seule à la fois)"))


class LevelForm(FlaskForm):
    rank = IntegerField(_l("Rang"), validators=[Optional()])
    label = StringField(_l("Libellé"), validators=[Length(max=200)])
    delay_days = IntegerField(_l("Délai après l'échéance et la grâce (jours)"), validators=[Optional()])
    min_amount = StringField(_l("Montant minimum dû (€)"), validators=[Length(max=20)])
    letter_template = SelectField(_l("Courrier"), validate_choice=False, choices=[])
    mail_template = SelectField(_l("Mail"), validate_choice=False, choices=[])
    agent_task = BooleanField(_l("Tâche de recouvrement pour un agent après ce niveau"))
    formal_notice = BooleanField(_l("Mise en demeure (après l'accompagnement social d'un client fragile)"))


class BlockForm(FlaskForm):
    contract_number = StringField(_l("N° de contrat"), validators=[Length(max=30)])
    until = DateField(_l("Jusqu'au (inclus)"), validators=[Optional()])
    reason = TextAreaField(_l("Raison"), validators=[Length(max=500)])


class DryRunForm(FlaskForm):
    class Meta:
        csrf = False  # a GET that writes nothing

    day = DateField(_l("Relance au"), validators=[Optional()])

"""The form of a mail written from the dossier page."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length

from app.mails.outbox import BODY_MAX, SUBJECT_MAX


class MailForm(FlaskForm):
    template = SelectField(_l("Modèle"), choices=[], validate_choice=False)
    recipient = StringField(_l("Destinataire"), validators=[Length(max=254)])
    subject = StringField(_l("Objet"), validators=[Length(max=SUBJECT_MAX)])
    body = TextAreaField(_l("Texte"), validators=[Length(max=BODY_MAX)])
    attachment = SelectField(_l("Pièce jointe"), choices=[], validate_choice=False)

"""Forms of the login and agent-administration pages."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

LANGUAGE_CHOICES = [SelectChoice("fr", "Français"), SelectChoice("en", "English")]


class LoginForm(FlaskForm):
    login = StringField(_l("Identifiant"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(), Length(max=200)])


class LanguageForm(FlaskForm):
    language = SelectField(_l("Langue de l'interface"), choices=LANGUAGE_CHOICES)


class CheckboxListField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AgentForm(FlaskForm):
    full_name = StringField(_l("Nom complet"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    language = SelectField(_l("Langue"), choices=LANGUAGE_CHOICES)
    roles = CheckboxListField(_l("Rôles"), choices=[])
    territories = SelectMultipleField(_l("Territoires"), choices=[])


class EditAgentForm(AgentForm):
    version = HiddenField()


class NewAgentForm(AgentForm):
    login = StringField(_l("Identifiant"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mot de passe initial"), validators=[DataRequired(), Length(max=200)])


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("Nouveau mot de passe"), validators=[DataRequired(), Length(max=200)])


class ConfirmForm(FlaskForm):
    """An empty form: a button whose POST carries the CSRF token."""

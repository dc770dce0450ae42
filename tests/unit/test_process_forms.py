"""Step forms from JSON Schema (app.processes.forms): the shipped forms build with the right widgets,
posted strings become typed answers, validation puts one French message beside the right field,
"ui:visibleIf" hides fields, and the form_fields macro renders them accessibly and escaped."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from flask import render_template_string
from werkzeug.datastructures import MultiDict

from app.processes.forms import FIELD_PREFIX, WIDGETS, Field, build, parse, posted, prefill, validate
from tests.unit.test_shipped_processes import ANSWERS

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
SCHEMAS = sorted(BPMN.glob("*/*.schema.json"))
EXPECTED_WIDGETS = {  # "process/form" → field → widget
    "information_request/answer": {"answer": "textarea", "satisfied": "checkbox"},
    "move_in/contract": {"offer": "text", "payment_method": "select", "iban": "text"},
    "move_in/identity": {"identity_checked": "checkbox", "move_in_on": "date", "phone": "tel", "email": "email"},
    "move_in/meter": {"index_value": "integer", "source": "select"},
    "move_out/leave": {"move_out_on": "date", "new_address": "text"},
    "move_out/meter": {"index_value": "integer", "source": "select"},
    "payment_difficulty/check": {"paid": "checkbox", "comment": "textarea"},
    "payment_difficulty/remind": {"reached": "checkbox", "channel": "radio", "note": "textarea"},
    "payment_difficulty/sign": {"accepted": "checkbox", "accepted_on": "date"},
    "payment_difficulty/study": {"situation": "textarea", "fsl": "checkbox", "instalments": "integer",
                                 "first_due_on": "date"},
    "reading_dispute/conclude": {"decision": "radio", "corrected_index": "integer"},
    "reading_dispute/record": {"disputed_index": "integer", "claimed_index": "integer", "reason": "select",
                                "details": "textarea"},
    "unpaid_relaunch/collect": {"outcome": "select", "measure": "select", "comment": "textarea"},
    "unpaid_relaunch/social": {"fsl_informed": "checkbox", "channel": "select", "fsl_request": "checkbox",
                               "comment": "textarea"},
}
CONCLUDE = json.loads((BPMN / "reading_dispute/conclude.schema.json").read_text(encoding="utf-8"))
CONCLUDE_UI = {"corrected_index": {"ui:visibleIf": {"decision": "relève_corrigée"}}}


def form_of(path: Path) -> tuple[dict, dict | None]:
    ui = path.with_name(path.name.replace(".schema.json", ".uischema.json"))
    return (json.loads(path.read_text(encoding="utf-8")),
            json.loads(ui.read_text(encoding="utf-8")) if ui.exists() else None)


def key_of(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.schema.json')}"


def browser_post(fields: list[Field]) -> dict[str, str]:
    """What a browser posts for the fields as rendered (an unchecked checkbox posts nothing)."""
    return {f.input_name: "true" if f.value is True else f.value for f in fields if f.value is not False}


def one(schema_property: dict, required: bool = False) -> dict:
    return {"type": "object", "properties": {"x": schema_property}, "required": ["x"] if required else []}


# --- build -----------------------------------------------------------------------------------------

def test_every_shipped_form_is_expected():
    assert {key_of(p) for p in SCHEMAS} == set(EXPECTED_WIDGETS)


@pytest.mark.parametrize("path", SCHEMAS, ids=key_of)
def test_each_shipped_form_builds_with_its_widgets(path):
    schema, ui = form_of(path)
    fields = build(schema, ui, {})
    assert {f.name: f.widget for f in fields} == EXPECTED_WIDGETS[key_of(path)]
    assert all(f.widget in WIDGETS and f.label and f.input_name == FIELD_PREFIX + f.name for f in fields)
    assert {f.name for f in fields if f.required} == set(schema.get("required", []))


@pytest.mark.parametrize("path", SCHEMAS, ids=key_of)
def test_each_shipped_sample_answer_survives_render_post_parse_validate(path):
    schema, ui = form_of(path)
    answer = ANSWERS[path.parent.name][path.name.removesuffix(".schema.json")]
    data = parse(schema, ui, browser_post(build(schema, ui, answer)))
    expected = {name: False for name, f in schema["properties"].items() if f.get("type") == "boolean"}
    assert data == expected | answer
    assert validate(schema, ui, data) == {}


def test_build_reads_titles_help_placeholders_defaults_and_the_ui_schema():
    schema, ui = form_of(BPMN / "information_request/answer.schema.json")
    answer, satisfied = build(schema, ui, None)
    assert (answer.label, answer.widget, answer.required) == ("Réponse donnée", "textarea", True)
    assert answer.help == "Ce que vous avez répondu, en une ou deux phrases."
    assert (answer.min_length, answer.max_length, answer.value) == (3, 4000, "")
    assert (satisfied.widget, satisfied.value, satisfied.required) == ("checkbox", True, False)  # its default
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "description": "Aide du schéma"},
        "b": {"type": "string"},
        "c": {"type": "string", "title": "Titre", "format": "phone"},
    }}
    fields = build(schema, {"ui:order": ["c", "*", "a"], "b": {"ui:placeholder": "ex. 12", "ui:help": "Aide UI"}}, {})
    assert [f.name for f in fields] == ["c", "b", "a"]
    assert [f.label for f in fields] == ["Titre", "b", "a"]
    assert (fields[0].widget, fields[1].placeholder, fields[1].help, fields[2].help) == (
        "tel", "ex. 12", "Aide UI", "Aide du schéma")
    assert [f.name for f in build(schema, {"ui:order": ["b"]}, {})] == ["b", "a", "c"]


def test_build_options_from_enum_names_one_of_and_radio():
    schema = {"type": "object", "properties": {
        "reason": {"type": "string", "enum": ["erreur_releve", "autre"]},
        "level": {"type": "integer", "oneOf": [{"const": 1, "title": "Faible"}, {"const": 2, "title": "Fort"}]},
        "channel": {"type": "string", "enum": ["tel", "mail"]},
    }}
    ui = {"channel": {"ui:widget": "radio", "ui:enumNames": ["Téléphone", "Courriel"]}}
    reason, level, channel = build(schema, ui, {"level": 2})
    assert (reason.widget, reason.options) == ("select", [("erreur_releve", "Erreur releve"), ("autre", "Autre")])
    assert (level.widget, level.options, level.value) == ("select", [("1", "Faible"), ("2", "Fort")], "2")
    assert (channel.widget, channel.options) == ("radio", [("tel", "Téléphone"), ("mail", "Courriel")])


def test_build_numbers_dates_and_prefilled_values():
    from datetime import date, datetime

    schema = {"type": "object", "properties": {
        "fee": {"type": "number", "format": "amount", "minimum": 0},
        "ratio": {"type": "number", "maximum": 1.5},
        "count": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        "half": {"type": "number", "multipleOf": 0.5},
        "on": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date"},
    }}
    data = {"fee": Decimal("12.5"), "ratio": 0.25, "count": 3, "half": 1.5,
            "on": date(2026, 12, 1), "at": datetime(2026, 12, 2, 10, 30), "unrelated": "x"}
    fee, ratio, count, half, on, at = build(schema, None, data)
    assert (fee.widget, fee.step, fee.value, fee.minimum) == ("amount", "0.01", "12.50", 0)
    assert (ratio.widget, ratio.step, ratio.value, ratio.maximum) == ("number", "any", "0.25", 1.5)
    assert (count.widget, count.step, count.minimum, count.maximum, count.value) == ("integer", None, 1, 9, "3")
    assert (half.step, on.value, at.value) == ("0.5", "2026-12-01", "2026-12-02")
    assert prefill(schema, data) == {k: v for k, v in data.items() if k != "unrelated"}


def test_build_attaches_errors_and_conditions():
    decision, corrected = build(CONCLUDE, CONCLUDE_UI, {}, {"decision": "Ce champ est obligatoire."})
    assert (decision.error, corrected.error) == ("Ce champ est obligatoire.", None)
    assert (decision.visible_if, corrected.visible_if) == (None, {"decision": "relève_corrigée"})


def test_object_and_array_properties_make_no_field():
    schema = {"type": "object", "properties": {"a": {"type": "object"}, "b": {"type": "array"}, "c": {}}}
    assert build(schema, None, {}) == []
    assert parse(schema, None, {"f-a": "x", "f-b": "y", "f-c": "z"}) == {}


# --- parse -----------------------------------------------------------------------------------------

PARSED = {"type": "object", "properties": {
    "count": {"type": "integer"}, "ratio": {"type": "number"}, "fee": {"type": "number", "format": "amount"},
    "flag": {"type": "boolean"}, "on": {"type": "string", "format": "date"}, "text": {"type": "string"},
    "level": {"type": "integer", "enum": [1, 2]},
}}


@pytest.mark.parametrize(("name", "raw", "value"), [
    ("count", "12", 12), ("count", " -3 ", -3), ("count", "12.0", 12), ("count", "1 200", 1200),
    ("count", "12.5", "12.5"), ("count", "douze", "douze"),
    ("ratio", "0.25", Decimal("0.25")), ("ratio", "1,5", Decimal("1.5")), ("ratio", "1e5", "1e5"),
    ("fee", "12,5", Decimal("12.50")), ("fee", "1\u202f234,56", Decimal("1234.56")), ("fee", "7", Decimal("7.00")),
    ("fee", "12.345", Decimal("12.345")), ("fee", "12.300", Decimal("12.30")),
    ("on", "2026-12-01", "2026-12-01"), ("on", "1/12/2026", "2026-12-01"), ("on", "2026-13-45", "2026-13-45"),
    ("text", "  bonjour\x00 ", "bonjour"), ("text", "a\r\nb", "a\nb"),
    ("level", "2", 2), ("level", "3", "3"),
])
def test_parse_types_posted_strings(name, raw, value):
    parsed = parse(PARSED, None, {FIELD_PREFIX + name: raw})[name]
    assert parsed == value and type(parsed) is type(value)
    if isinstance(value, Decimal):
        assert str(parsed) == str(value)  # 12.50, not 12.5


def test_parse_checkboxes_empties_and_unknown_names():
    assert parse(PARSED, None, {}) == {"flag": False}
    assert parse(PARSED, None, {"f-flag": "true"})["flag"] is True
    assert parse(PARSED, None, {"f-flag": "false"})["flag"] is False
    posted_form = {"f-count": "", "f-text": "   ", "f-on": "", "f-level": "", "f-other": "x", "text": "y",
                   "csrf_token": "t", "count": "1"}
    assert parse(PARSED, None, posted_form) == {"flag": False}


def test_parse_reads_a_multidict():
    form = MultiDict([("f-count", "4"), ("f-count", "5"), ("f-flag", "true")])
    assert parse(PARSED, None, form) == {"count": 4, "flag": True}


def test_posted_keeps_the_text_as_typed_for_drafts_and_redisplay():
    form = {"f-count": " 12,5x", "f-text": "", "f-on": "31/02/2026", "f-level": "9", "f-other": "x", "f-fee": "a\x00b"}
    values = posted(PARSED, form)
    assert values == {"count": "12,5x", "text": "", "on": "31/02/2026", "level": "9", "flag": False, "fee": "ab"}
    json.dumps(values)  # a draft is stored as JSON
    fields = {f.name: f for f in build(PARSED, None, values)}
    assert (fields["count"].value, fields["flag"].value, fields["level"].value) == ("12,5x", False, "9")
    shown_again = {f.name: f.value for f in build(PARSED, None, posted(PARSED, {"f-flag": "true"}))}
    assert shown_again["flag"] is True and shown_again["count"] == ""


def test_checkboxes_read_stored_and_posted_states():
    schema = {"type": "object", "properties": {"ok": {"type": "boolean", "default": True}}}
    assert [build(schema, None, {"ok": v})[0].value for v in (True, False, "true", "false", "on", None, 0)] == [
        True, False, True, False, True, False, False]
    assert build(schema, None, {})[0].value is True  # the default


def test_parse_drops_fields_hidden_by_visible_if():
    shown = {"f-decision": "relève_corrigée", "f-corrected_index": "12"}
    assert parse(CONCLUDE, CONCLUDE_UI, shown) == {"decision": "relève_corrigée", "corrected_index": 12}
    assert parse(CONCLUDE, CONCLUDE_UI, shown | {"f-decision": "relève_confirmée"}) == {"decision": "relève_confirmée"}
    assert parse(CONCLUDE, CONCLUDE_UI, {"f-corrected_index": "12"}) == {}


def test_visible_if_lists_and_chains():
    schema = {"type": "object", "required": ["method", "iban", "mandate"], "properties": {
        "method": {"type": "string", "enum": ["prelevement", "virement", "cheque"]},
        "iban": {"type": "string"},
        "mandate": {"type": "string"},
    }}
    ui = {"iban": {"ui:visibleIf": {"method": ["prelevement", "virement"]}},
          "mandate": {"ui:visibleIf": {"iban": "FR76"}}}
    assert parse(schema, ui, {"f-method": "virement", "f-iban": "FR76", "f-mandate": "M1"}) == {
        "method": "virement", "iban": "FR76", "mandate": "M1"}
    # iban hidden: mandate, shown under iban's value, goes too.
    assert parse(schema, ui, {"f-method": "cheque", "f-iban": "FR76", "f-mandate": "M1"}) == {"method": "cheque"}
    assert validate(schema, ui, {"method": "cheque"}) == {}
    assert validate(schema, ui, {"method": "virement"}) == {"iban": "Ce champ est obligatoire."}


# --- validate --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("prop", "value", "message"), [
    ({"type": "integer"}, "douze", "Saisissez un nombre entier."),
    ({"type": "number"}, "abc", "Saisissez un nombre."),
    ({"type": "number", "format": "amount"}, "abc", "Saisissez un montant en euros, par exemple 12,50."),
    ({"type": "number", "format": "amount"}, Decimal("12.345"), "Saisissez un montant avec deux décimales au plus."),
    ({"type": "integer", "minimum": 2}, 1, "La valeur doit être au moins 2."),
    ({"type": "number", "minimum": 1.5}, Decimal("1"), "La valeur doit être au moins 1,5."),
    ({"type": "integer", "maximum": 24}, 25, "La valeur doit être au plus 24."),
    ({"type": "integer", "maximum": 10000}, 10001, "La valeur doit être au plus 10\u202f000."),
    ({"type": "number", "exclusiveMinimum": 0}, Decimal("0"), "La valeur doit être supérieure à 0."),
    ({"type": "number", "exclusiveMaximum": 2.5}, Decimal("2.5"), "La valeur doit être inférieure à 2,5."),
    ({"type": "number", "multipleOf": 0.5}, Decimal("1.2"), "La valeur doit être un multiple de 0,5."),
    ({"type": "string", "minLength": 3}, "ab", "3 caractères au moins."),
    ({"type": "string", "maxLength": 5}, "abcdef", "5 caractères au plus."),
    ({"type": "string", "maxLength": 1}, "ab", "1 caractère au plus."),
    ({"type": "string", "pattern": "^[A-Z]{2}$"}, "fr", "Le format n'est pas valide."),
    ({"type": "string", "enum": ["a", "b"]}, "c", "Choisissez une des valeurs proposées."),
    ({"oneOf": [{"const": 1, "title": "Un"}]}, 2, "Choisissez une des valeurs proposées."),
    ({"type": "string", "format": "date"}, "2026-13-45", "Saisissez une date valide (jj/mm/aaaa)."),
    ({"type": "string", "format": "date"}, "2026-02-30", "Saisissez une date valide (jj/mm/aaaa)."),
    ({"type": "string", "format": "email"}, "zoe.example.fr", "Saisissez une adresse e-mail valide."),
    ({"type": "boolean"}, "oui", "Cochez la case ou laissez-la vide."),
])
def test_validate_gives_the_french_message_beside_the_field(prop, value, message):
    assert validate(one(prop), None, {"x": value}) == {"x": message}


def test_required_errors_attach_to_each_missing_field():
    schema = {"type": "object", "required": ["a", "b"],
              "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    assert validate(schema, None, {}) == {"a": "Ce champ est obligatoire.", "b": "Ce champ est obligatoire."}
    assert validate(schema, None, {"a": "x"}) == {"b": "Ce champ est obligatoire."}


def test_decimals_count_as_numbers_exactly():
    assert validate(one({"type": "number", "minimum": 0, "maximum": 1}), None, {"x": Decimal("0.5")}) == {}
    assert validate(one({"type": "number", "multipleOf": 0.1}), None, {"x": Decimal("0.3")}) == {}
    assert validate(one({"type": "number", "multipleOf": 0.01}), None, {"x": 1.1}) == {}
    assert validate(one({"type": "number", "format": "amount"}), None, {"x": Decimal("12.50")}) == {}
    assert validate(one({"type": "string", "format": "date"}), None, {"x": "2026-12-31"}) == {}


def test_one_message_per_field_the_first_error():
    errors = validate(one({"type": "string", "minLength": 5, "pattern": "^[0-9]+$"}), None, {"x": "ab"})
    assert errors == {"x": "5 caractères au moins."}


def test_errors_tied_to_no_field_go_under_the_empty_key():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "dependentRequired": {"a": ["b"]}}
    errors = validate(schema, None, {"a": "x"})
    assert list(errors) == [""] and errors[""].startswith("Le formulaire n'est pas valide : ")


def test_hidden_fields_are_not_required():
    schema = dict(CONCLUDE, required=["decision", "corrected_index"])
    assert validate(schema, CONCLUDE_UI, {"decision": "relève_confirmée"}) == {}
    assert validate(schema, CONCLUDE_UI, {"decision": "relève_corrigée"}) == {
        "corrected_index": "Ce champ est obligatoire."}
    assert schema["required"] == ["decision", "corrected_index"]  # the schema is left as it was


def test_messages_inside_an_application(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert validate(one({"type": "number", "minimum": 1.5}), None, {"x": Decimal("1")}) == {
            "x": "La valeur doit être au moins 1,5."}


# --- the form_fields macro -------------------------------------------------------------------------

def render(app, fields: list[Field]) -> str:
    with app.test_request_context():
        return render_template_string(
            '{% from "processes/_form_fields.html" import form_fields %}{{ form_fields(fields) }}', fields=fields)


def test_the_macro_renders_each_widget(app):
    schema, ui = form_of(BPMN / "information_request/answer.schema.json")
    conclude = dict(CONCLUDE, required=["decision", "corrected_index"])
    html = render(app, build(schema, ui, {"answer": "Horaires"}) + build(conclude, CONCLUDE_UI, {
        "decision": "relève_corrigée", "corrected_index": 12}) + build(PARSED, None, {"fee": Decimal("3")}))
    assert '<textarea name="f-answer" id="f-answer" rows="4" minlength="3" maxlength="4000"' in html
    assert 'aria-describedby="f-answer-help" required>Horaires</textarea>' in html
    assert '<small id="f-answer-help">Ce que vous avez répondu, en une ou deux phrases.</small>' in html
    assert '<input type="checkbox" name="f-satisfied" id="f-satisfied" value="true" checked>' in html
    assert '<option value="relève_corrigée" selected>Relève corrigée</option>' in html
    assert '<option value="">— choisir —</option>' in html
    assert 'data-visible-if=\'{"decision": "rel\\u00e8ve_corrig\\u00e9e"}\'' in html
    assert 'id="f-corrected_index" value="12" inputmode="numeric" min="0" aria-required="true">' in html
    assert 'name="f-fee" id="f-fee" value="3.00" inputmode="decimal" step="0.01">' in html
    assert '<input type="date" name="f-on" id="f-on" value="">' in html
    assert '<label for="f-fee">fee (€)</label>' in html


def test_the_macro_renders_radios_and_patterns(app):
    schema = {"type": "object", "required": ["channel"], "properties": {
        "channel": {"type": "string", "enum": ["tel", "mail"]},
        "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}$"},
        "loose": {"type": "string", "pattern": "[0-9]"},
    }}
    html = render(app, build(schema, {"channel": {"ui:widget": "radio"}}, {"channel": "mail"}))
    assert '<legend>channel <span class="required-mark" title="obligatoire" aria-hidden="true">*</span>' in html
    assert 'id="f-channel-1" value="mail" checked required>' in html
    assert 'pattern="^[A-Z]{2}[0-9]{2}$"' in html and 'pattern="[0-9]"' not in html


def test_the_macro_puts_the_error_beside_the_field(app):
    schema = one({"type": "integer", "title": "Index", "minimum": 0}, required=True)
    data = parse(schema, None, {"f-x": "-4"})
    html = render(app, build(schema, None, data, validate(schema, None, data)))
    assert 'value="-4" inputmode="numeric" min="0" aria-describedby="f-x-error" aria-invalid="true" required>' in html
    assert '<small id="f-x-error" class="field-error">La valeur doit être au moins 0.</small>' in html


def test_the_macro_escapes_labels_values_and_messages(app):
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "title": "<script>alert(1)</script>", "description": "<b>aide</b>"},
        "b": {"type": "string", "enum": ["<i>"]},
    }}
    ui = {"b": {"ui:visibleIf": {"a": "</div><script>x</script>'"}}}
    html = render(app, build(schema, ui, {"a": '"><script>alert(2)</script>'}, {"a": "<script>3</script>"}))
    assert "<script>alert" not in html and "<b>" not in html and "<i>" not in html and "<script>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in html
    assert "&lt;script&gt;3&lt;/script&gt;" in html
    assert "\\u003c/div\\u003e\\u003cscript\\u003ex\\u003c/script\\u003e\\u0027" in html


# --- What the tour of the pages found -------------------------------------------------------------

def test_a_number_longer_than_any_index_is_a_type_error_not_a_huge_value():
    schema, ui = form_of(BPMN / "move_in/meter.schema.json")
    parsed = parse(schema, ui, {"f-index_value": "9" * 5000, "f-source": "client"})
    assert parsed["index_value"] == "9" * 5000  # kept as text, refused below
    assert validate(schema, ui, parsed) == {"index_value": "Saisissez un nombre entier."}
    assert parse(schema, ui, {"f-index_value": "9" * 15})["index_value"] == int("9" * 15)


def test_posted_text_is_cut_at_the_fields_length():
    schema, _ui = form_of(BPMN / "move_in/identity.schema.json")
    kept = posted(schema, {"f-phone": "0" * 50_000, "f-email": "x" * 50_000})
    assert len(kept["phone"]) == 20 and len(kept["email"]) == 254
    answer, _ = form_of(BPMN / "payment_difficulty/study.schema.json")
    assert len(posted(answer, {"f-situation": "y" * 50_000})["situation"]) == 4000


def test_a_box_the_step_needs_ticked_says_so():
    schema, ui = form_of(BPMN / "move_in/identity.schema.json")
    data = parse(schema, ui, {"f-move_in_on": "2026-12-01"})
    assert validate(schema, ui, data) == {"identity_checked": "Cochez cette case pour continuer."}
    assert validate(schema, ui, {**data, "identity_checked": True}) == {}


def test_the_iban_is_asked_for_a_direct_debit_only_and_may_be_typed_with_spaces():
    schema, ui = form_of(BPMN / "move_in/contract.schema.json")
    debit = {"f-offer": "Eau", "f-payment_method": "prelevement"}
    assert validate(schema, ui, parse(schema, ui, debit)) == {"iban": "Ce champ est obligatoire."}
    spaced = parse(schema, ui, {**debit, "f-iban": "FR76 3000 6000 0112 3456 7890 189"})
    assert validate(schema, ui, spaced) == {}
    cheque = parse(schema, ui, {"f-offer": "Eau", "f-payment_method": "cheque", "f-iban": "not an iban"})
    assert "iban" not in cheque and validate(schema, ui, cheque) == {}  # hidden, dropped, not required
    labels = dict(next(f for f in build(schema, ui, {}) if f.name == "payment_method").options)
    assert labels["prelevement"] == "Prélèvement" and labels["cheque"] == "Chèque"

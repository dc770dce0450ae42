"""The form editor's model: every shipped form survives a round trip through the list of fields
(the agents' renderer shows the same fields), each type gives its widget, posts parse, refusals
point at their input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from app.processes import field_list, forms
from app.processes.field_list import FieldSpec

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
SHIPPED = sorted(BPMN.glob("*/*.schema.json"))


def _documents(path: Path) -> tuple[dict, dict | None]:
    ui_path = path.with_name(path.name.replace(".schema.json", ".uischema.json"))
    return json.loads(path.read_text(encoding="utf-8")), \
        json.loads(ui_path.read_text(encoding="utf-8")) if ui_path.exists() else None


def _shown(schema: dict, ui: dict | None) -> list[tuple]:
    return [(f.name, f.label, f.widget, f.required, f.options, f.visible_if, f.help, f.minimum, f.maximum,
             f.max_length, f.pattern, f.step) for f in forms.build(schema, ui, {})]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_form_round_trips(path):
    schema, ui = _documents(path)
    rebuilt_schema, rebuilt_ui = field_list.documents_of(
        field_list.fields_of(schema, ui), title=schema.get("title", ""), base_schema=schema, base_ui=ui)
    assert _shown(rebuilt_schema, rebuilt_ui) == _shown(schema, ui)
    for key, value in schema.items():
        if key not in ("properties", "required"):
            assert rebuilt_schema[key] == value  # "x-guard", "$schema", the title…
    assert set(rebuilt_schema["properties"]) == set(schema["properties"])


def test_the_guarded_form_keeps_its_guard():
    schema, ui = _documents(BPMN / "unpaid_relaunch/collect.schema.json")
    assert schema["x-guard"] == "dunning_cut_off"
    rebuilt, _ui = field_list.documents_of(field_list.fields_of(schema, ui), title="Recouvrement", base_schema=schema,
                                           base_ui=ui)
    assert rebuilt["x-guard"] == "dunning_cut_off" and rebuilt["title"] == "Recouvrement"


@pytest.mark.parametrize(("kind", "widget"), [
    ("text", "text"), ("textarea", "textarea"), ("integer", "integer"), ("number", "number"), ("amount", "amount"),
    ("date", "date"), ("email", "email"), ("phone", "tel"), ("boolean", "checkbox"), ("choice", "select")])
def test_each_type_gives_the_widget_agents_see(kind, widget):
    spec = FieldSpec(name="answer", label="Réponse", type=kind, options=[("a", "A")] if kind == "choice" else [])
    schema, ui = field_list.documents_of([spec], title="Essai")
    [shown] = forms.build(schema, ui, {})
    assert shown.widget == widget and shown.label == "Réponse"
    assert field_list.fields_of(schema, ui)[0].type == kind


def test_a_post_becomes_fields_in_order_without_the_deleted_ones():
    posted = MultiDict([
        ("fields-0-name", "decision"), ("fields-0-label", "Décision"), ("fields-0-type", "choice"),
        ("fields-0-options", "accord = Accord\nrefus\n\n"), ("fields-0-radio", "on"), ("fields-0-required", "on"),
        ("fields-1-name", "gone"), ("fields-1-label", "Supprimé"), ("fields-1-type", "text"), ("fields-1-delete", "on"),
        ("fields-3-name", "reason"), ("fields-3-label", "Motif"), ("fields-3-type", "textarea"),
        ("fields-3-visible_field", "decision"), ("fields-3-visible_values", "refus, autre"),
        ("fields-3-extra", '{"maxLength": 500}'),
    ])
    decision, reason = field_list.fields_from_post(posted)
    assert (decision.name, decision.required, decision.radio, decision.options) == (
        "decision", True, True, [("accord", "Accord"), ("refus", "refus")])
    assert reason.visible_if == {"decision": ["refus", "autre"]} and reason.extra == {"maxLength": 500}
    assert field_list.check_fields([decision, reason]) == {}


@pytest.mark.parametrize(("specs", "key", "message"), [
    ([FieldSpec("Nom", "Nom", "text")], "fields-0-name", "Nom technique"),
    ([FieldSpec("a", "A", "text"), FieldSpec("a", "B", "text")], "fields-1-name", "déjà celui d'un autre champ"),
    ([FieldSpec("a", "", "text")], "fields-0-label", "Donnez un libellé"),
    ([FieldSpec("a", "A", "colour")], "fields-0-type", "Type de champ inconnu"),
    ([FieldSpec("a", "A", "choice")], "fields-0-options", "au moins une option"),
    ([FieldSpec("a", "A", "choice", options=[("x", "X"), ("x", "Y")])], "fields-0-options", "même valeur"),
    ([FieldSpec("a", "A", "text", visible_if={"a": ["1"]})], "fields-0-visible_field", "lui-même"),
    ([FieldSpec("a", "A", "text", visible_if={"z": ["1"]})], "fields-0-visible_field", "« z »"),
    ([FieldSpec("a", "A", "text", visible_if={"b": ["1"]}), FieldSpec("b", "B", "text", visible_if={"a": ["1"]})],
     "fields-0-visible_field", "tournent en rond"),
    ([FieldSpec("a", "A", "text", extra={"maxLength": "long"})], "fields-0-extra", "properties/a/maxLength"),
])
def test_each_refusal_points_at_its_input(specs, key, message):
    errors = field_list.check_fields(specs)
    assert key in errors and message in errors[key], errors


def test_a_row_added_and_left_blank_is_dropped():
    posted = MultiDict([("fields-0-name", "a"), ("fields-0-label", "A"), ("fields-0-type", "text"),
                        ("fields-1-name", ""), ("fields-1-label", ""), ("fields-1-type", "text")])
    assert [f.name for f in field_list.fields_from_post(posted)] == ["a"]

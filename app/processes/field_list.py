"""The form editor's model: a step form's JSON Schema and UI schema seen as a list of fields (label,
type, required, options, help, condition), and back. What the editor does not edit is kept as it
was: a property's other keywords (bounds, lengths, pattern…) in ``extra``, its other UI keys in
``ui_extra``, the schema's top-level keys ("x-guard"…) and its non-scalar properties. The page
posts one block of inputs per field (``fields-<i>-<attribute>``). Pure Python, no database."""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from app.processes import forms

FIELD_TYPES = ("text", "textarea", "integer", "number", "amount", "date", "email", "phone", "boolean", "choice")
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_FORMATS = {"date": "date", "email": "email", "phone": "phone", "amount": "amount"}
_OWNED = {"title", "type", "enum", "oneOf"}  # a property's keys the editor writes itself
_OWNED_UI = {"ui:help", "ui:visibleIf", "ui:enumNames", "ui:title"}
_INDEX = re.compile(r"fields-(\d+)-")


@dataclass
class FieldSpec:
    name: str
    label: str
    type: str
    required: bool = False
    help: str = ""
    options: list[tuple[Any, str]] = field(default_factory=list)
    radio: bool = False
    visible_if: dict[str, list] | None = None
    extra: dict = field(default_factory=dict)
    ui_extra: dict = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # attribute → message, from a post that did not parse


# --- From the documents ------------------------------------------------------------------------

def _kind(prop: dict, ui: dict) -> str:
    kind = forms._type(prop)
    if "enum" in prop or "oneOf" in prop:
        return "choice"
    if kind == "boolean":
        return "boolean"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "amount" if prop.get("format") == "amount" else "number"
    widget = ui.get("ui:widget")
    if prop.get("format") in ("date", "email", "phone"):
        return prop["format"]
    if widget == "tel":
        return "phone"
    if widget == "textarea":
        return "textarea"
    return "text"


def _options(prop: dict, ui: dict) -> list[tuple[Any, str]]:
    if "enum" in prop:
        names = ui.get("ui:enumNames") or []
        return [(value, str(names[i]) if i < len(names) else str(value)) for i, value in enumerate(prop["enum"])]
    return [(entry.get("const"), str(entry.get("title", entry.get("const"))))
            for entry in prop.get("oneOf") or [] if isinstance(entry, dict)]


def fields_of(schema: dict, ui: dict | None) -> list[FieldSpec]:
    """The form's fields in the order the agent sees them."""
    ui = ui or {}
    properties = forms._properties(schema)
    required = set(schema.get("required") or [])
    found = []
    for name in forms._order(list(properties), ui.get("ui:order") or []):
        prop, entry = properties[name], forms._ui(ui, name)
        kind = _kind(prop, entry)
        extra = {k: v for k, v in prop.items() if k not in _OWNED and not (k == "format" and v in _FORMATS)}
        owned_widget = entry.get("ui:widget") in ("textarea", "radio")  # "tel" stays as the form wrote it
        ui_extra = {k: v for k, v in entry.items() if k not in _OWNED_UI and not (k == "ui:widget" and owned_widget)}
        condition = entry.get("ui:visibleIf")
        visible_if = {k: list(v) if isinstance(v, list) else [v] for k, v in condition.items()} \
            if isinstance(condition, dict) and condition else None
        found.append(FieldSpec(
            name=name, label=str(entry.get("ui:title") or prop.get("title") or name), type=kind,
            required=name in required, help=str(entry.get("ui:help") or ""),
            options=_options(prop, entry) if kind == "choice" else [], radio=entry.get("ui:widget") == "radio",
            visible_if=visible_if, extra=extra, ui_extra=ui_extra))
    return found


# --- To the documents ---------------------------------------------------------------------------

def _property(spec: FieldSpec) -> dict:
    prop = copy.deepcopy(spec.extra)
    prop["title"] = spec.label
    kind = spec.type
    if kind in ("text", "textarea", "date", "email", "phone"):
        prop["type"] = "string"
    elif kind == "amount":
        prop["type"] = "number"
    elif kind in ("integer", "number", "boolean"):
        prop["type"] = kind
    elif kind == "choice":
        values = [value for value, _label in spec.options]
        if all(isinstance(v, str) for v in values):
            prop["type"] = "string"
        prop["enum"] = values
    if kind == "phone" and spec.ui_extra.get("ui:widget") == "tel":
        if prop.get("format") in _FORMATS:  # a phone by its widget, as the form wrote it
            prop.pop("format")
    elif kind in _FORMATS:
        prop["format"] = _FORMATS[kind]
    elif prop.get("format") in _FORMATS:  # a former type's format, not this one's
        prop.pop("format")
    return prop


def _ui_entry(spec: FieldSpec) -> dict:
    entry = copy.deepcopy(spec.ui_extra)
    if entry.get("ui:widget") == "tel" and spec.type != "phone":
        entry.pop("ui:widget")  # no longer a phone
    if spec.help:
        entry["ui:help"] = spec.help
    if spec.type == "textarea":
        entry["ui:widget"] = "textarea"
    elif spec.type == "choice" and spec.radio:
        entry["ui:widget"] = "radio"
    if spec.type == "choice" and any(str(value) != label for value, label in spec.options):
        entry["ui:enumNames"] = [label for _value, label in spec.options]
    if spec.visible_if:
        entry["ui:visibleIf"] = {k: v[0] if len(v) == 1 else list(v) for k, v in spec.visible_if.items()}
    return entry


def documents_of(fields: list[FieldSpec], *, title: str, base_schema: dict | None = None,
                 base_ui: dict | None = None) -> tuple[dict, dict]:
    """The JSON Schema and UI schema of these fields, keeping what the base documents held that the
    editor does not edit."""
    base_schema, base_ui = base_schema or {}, base_ui or {}
    scalar = forms._properties(base_schema)
    kept = {name: prop for name, prop in (base_schema.get("properties") or {}).items() if name not in scalar}
    schema = {k: copy.deepcopy(v) for k, v in base_schema.items() if k not in ("properties", "required", "title")}
    schema.setdefault("type", "object")
    if title:
        schema["title"] = title
    properties = {spec.name: _property(spec) for spec in fields}
    for name, prop in kept.items():
        properties.setdefault(name, copy.deepcopy(prop))
    schema["properties"] = properties
    required = [spec.name for spec in fields if spec.required]
    required += [name for name in base_schema.get("required") or [] if name in kept and name not in required]
    if required:
        schema["required"] = required
    ui = {k: copy.deepcopy(v) for k, v in base_ui.items() if k.startswith("ui:") and k != "ui:order"}
    ui.update({name: copy.deepcopy(base_ui[name]) for name in kept if name in base_ui})
    for spec in fields:
        entry = _ui_entry(spec)
        if entry:
            ui[spec.name] = entry
    if fields:
        ui["ui:order"] = [spec.name for spec in fields] + (["*"] if kept else [])
    return schema, ui


# --- From the page ---------------------------------------------------------------------------------

def _get(form, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _condition_value(text: str) -> Any:
    return {"true": True, "false": False}.get(text, text)


def fields_from_post(form: Mapping) -> list[FieldSpec]:
    """The fields as posted, in their order; a row marked deleted is left out."""
    indexes = sorted({int(m.group(1)) for key in form.keys() if (m := _INDEX.match(key))})
    found = []
    for i in indexes:
        p = f"fields-{i}-"
        if form.get(p + "delete") or not any(_get(form, p + a).strip() for a in ("name", "label", "options", "help")):
            continue  # deleted, or added and left blank
        invalid, options = {}, []
        for line in _get(form, p + "options").splitlines():
            value, sep, label = line.partition("=")
            if value.strip():
                options.append((value.strip(), label.strip() if sep and label.strip() else value.strip()))
        visible_field = _get(form, p + "visible_field").strip()
        values = [_condition_value(v.strip()) for v in _get(form, p + "visible_values").split(",") if v.strip()]
        documents = {}
        for attribute in ("extra", "ui_extra"):
            text = _get(form, p + attribute).strip()
            try:
                documents[attribute] = json.loads(text) if text else {}
                if not isinstance(documents[attribute], dict):
                    raise ValueError
            except ValueError:
                documents[attribute] = {}
                invalid["extra"] = _("Réglages avancés illisibles (JSON) : rechargez le formulaire.")
        found.append(FieldSpec(
            name=_get(form, p + "name").strip(), label=_get(form, p + "label").strip(),
            type=_get(form, p + "type").strip(), required=bool(form.get(p + "required")),
            help=_get(form, p + "help").strip(), options=options, radio=bool(form.get(p + "radio")),
            visible_if={visible_field: values} if visible_field else None,
            extra=documents["extra"], ui_extra=documents["ui_extra"], invalid=invalid))
    return found


def _cycle(fields: list[FieldSpec]) -> set[str]:
    """Names of fields whose display condition leads back to themselves."""
    depends = {f.name: set(f.visible_if or {}) for f in fields}
    looping = set()
    for start in depends:
        seen, stack = set(), list(depends[start])
        while stack:
            name = stack.pop()
            if name == start:
                looping.add(start)
                break
            if name not in seen:
                seen.add(name)
                stack.extend(depends.get(name, ()))
    return looping


def check_fields(fields: list[FieldSpec]) -> dict[str, str]:
    """What is wrong with the fields, keyed by the input to correct (``fields-<i>-<attribute>``)."""
    errors: dict[str, str] = {}
    names = [f.name for f in fields]
    looping = _cycle(fields)
    for i, spec in enumerate(fields):
        p = f"fields-{i}-"
        for attribute, message in spec.invalid.items():
            errors[p + attribute] = message
        if not NAME.fullmatch(spec.name):
            errors[p + "name"] = _("Nom technique : des minuscules, chiffres et « _ », commençant par une lettre.")
        elif names.index(spec.name) != i:
            errors[p + "name"] = _("Ce nom technique est déjà celui d'un autre champ.")
        if not spec.label:
            errors[p + "label"] = _("Donnez un libellé au champ.")
        if spec.type not in FIELD_TYPES:
            errors[p + "type"] = _("Type de champ inconnu.")
        if spec.type == "choice":
            values = [str(value) for value, _label in spec.options]
            if not values:
                errors[p + "options"] = _("Une liste de choix a au moins une option.")
            elif len(set(values)) != len(values):
                errors[p + "options"] = _("Deux options ont la même valeur.")
        for other in spec.visible_if or {}:
            if other == spec.name:
                errors[p + "visible_field"] = _("Un champ ne peut pas dépendre de lui-même.")
            elif other not in names:
                errors[p + "visible_field"] = _("Aucun champ ne s'appelle « %(name)s ».", name=other)
            elif spec.name in looping:
                errors[p + "visible_field"] = _("Ces conditions d'affichage tournent en rond.")
    if not errors:
        schema, _ui = documents_of(fields, title="")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            path = list(exc.path)
            name = path[1] if len(path) > 1 and path[0] == "properties" else None
            key = f"fields-{names.index(name)}-extra" if name in names else "form"
            errors[key] = _("Réglage invalide (%(where)s : %(error)s).",
                            where="/".join(str(x) for x in path) or "racine", error=exc.message)
    return errors

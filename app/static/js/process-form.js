// Conditional fields of process step forms (app/processes/forms.py, "ui:visibleIf"): a wrapper with
// data-visible-if='{"field": value or [values]}' shows only while each named field holds one of the
// values, compared as text (true/false for a checkbox). While hidden, its inputs are disabled so that
// the browser does not post them, and a field under a hidden one is hidden too. Without this script
// every field shows and the server drops the hidden ones.
(function () {
  "use strict";
  if (window.guichetProcessForm) { return; }  // loaded once per page, whatever includes it
  window.guichetProcessForm = true;
  var PREFIX = "f-";  // forms.FIELD_PREFIX

  function current(form, name) {
    var control = form.elements[PREFIX + name];
    if (!control) { return null; }
    var first = control.tagName ? control : control[0];  // a RadioNodeList for radios
    if (!first || first.disabled) { return null; }
    if (first.type === "checkbox") { return first.checked ? "true" : "false"; }
    return control.value === "" ? null : control.value;
  }

  function matches(form, condition) {
    return Object.keys(condition).every(function (name) {
      var value = current(form, name);
      return value !== null && [].concat(condition[name]).map(String).indexOf(value) !== -1;
    });
  }

  function refresh(form) {
    var wrappers = form.querySelectorAll("[data-visible-if]");
    for (var pass = 0; pass <= wrappers.length; pass++) {  // until hiding one hides no other
      var changed = false;
      wrappers.forEach(function (wrapper) {
        var show = matches(form, JSON.parse(wrapper.dataset.visibleIf));
        if (show === !wrapper.hidden) { return; }
        changed = true;
        wrapper.hidden = !show;
        wrapper.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !show; });
      });
      if (!changed) { return; }
    }
  }

  function refreshAll() {
    document.querySelectorAll("form").forEach(function (form) {
      if (form.querySelector("[data-visible-if]")) { refresh(form); }
    });
  }

  ["change", "input"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var form = event.target.form;
      if (form && form.querySelector("[data-visible-if]")) { refresh(form); }
    });
  });
  document.addEventListener("htmx:afterSettle", refreshAll);

  // A form shown again with its errors: the first faulty field takes the focus.
  function focusFirstError() {
    var faulty = document.querySelector("form [aria-invalid=true]");
    if (faulty && !faulty.disabled) { faulty.focus(); }
  }
  document.addEventListener("DOMContentLoaded", focusFirstError);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refreshAll);
  } else {
    refreshAll();
  }
})();

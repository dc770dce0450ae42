// Keyboard shortcuts for logging a contact without reaching for the mouse:
// Alt+N opens "Nouveau contact" from any page (with the current customer on the 360° view);
// in the contact form, the type list has the focus when it opens, Alt+T goes back to it and
// Ctrl+Enter (Cmd+Enter) saves from any field.
(function () {
  "use strict";
  // A channel or direction picked by hand is kept when the type changes (the type's defaults apply
  // only to what the agent has not chosen). Capture phase: marked before htmx sends the form.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.form || target.form.id !== "contact-form" || target.type !== "radio") { return; }
    var marker = target.form.querySelector("input[name=" + target.name + "_chosen]");
    if (marker) { marker.value = "1"; }
  }, true);
  document.addEventListener("keydown", function (event) {
    var key = (event.key || "").toLowerCase();
    if (event.altKey && !event.ctrlKey && !event.metaKey && key === "n") {
      var link = document.getElementById("new-contact");
      if (link) { event.preventDefault(); window.location.assign(link.href); }
      return;
    }
    var form = document.getElementById("contact-form");
    if (!form) { return; }
    if (event.altKey && key === "t") {
      event.preventDefault();
      document.getElementById("contact-type").focus();
    } else if (key === "enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      var save = document.getElementById(form.dataset.submit || "save-contact");
      if (!save || save.disabled) { return; }  // the links panel is still being refreshed
      if (form.requestSubmit) { form.requestSubmit(save); } else { save.click(); }
    }
  });
})();

/* The process's progress drawn by bpmn-js (its plain viewer: the page scrolls under the mouse wheel, the diagram does not move, served from static/vendor/bpmn-js).

   Each element carrying data-process-diagram is drawn once, on page load and after every htmx swap:
     data-xml-url   where to fetch the BPMN XML (same origin);
     data-done      JSON array of BPMN element ids, marked "step-done";
     data-current   JSON array of ids, marked "step-current";
     data-failed    JSON array of ids, marked "step-failed".
   Ids the diagram does not hold are ignored. The element gets data-drawn while drawing and
   data-ready once the diagram is shown; when it cannot be shown (no viewer, fetch or import error),
   a short French message replaces it and it gets the class "process-diagram-failed". No inline
   script or <style>: bpmn-js sets its few styles through element.style, which the CSP allows. */
(function () {
  "use strict";

  var MARKERS = { done: "step-done", current: "step-current", failed: "step-failed" };
  var FAILURE = "Le schéma du processus n'a pas pu être affiché.";

  function ids(element, name) {
    try {
      var value = JSON.parse(element.dataset[name] || "[]");
      return Array.isArray(value) ? value.filter(function (id) { return typeof id === "string"; }) : [];
    } catch (error) {
      return [];
    }
  }

  function fail(element, viewer, error) {
    if (viewer) { viewer.destroy(); }
    element.textContent = element.dataset.failure || FAILURE;  // the page's language
    element.classList.add("process-diagram-failed");
    if (window.console && error) { window.console.warn("process-diagram:", error); }
  }

  function draw(element) {
    if (element.dataset.drawn) { return; }
    element.dataset.drawn = "1";
    if (typeof window.BpmnJS !== "function") {
      fail(element, null, new Error("bpmn-js is not loaded"));
      return;
    }
    var viewer = new window.BpmnJS({ container: element });
    fetch(element.dataset.xmlUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        canvas.zoom("fit-viewport", "auto");
        Object.keys(MARKERS).forEach(function (name) {
          ids(element, name).forEach(function (id) {
            if (registry.get(id)) { canvas.addMarker(id, MARKERS[name]); }
          });
        });
        element.dataset.ready = "1";
      })
      .catch(function (error) { fail(element, viewer, error); });
  }

  function drawAll() {
    document.querySelectorAll("[data-process-diagram]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  // The swapped-in content may be the diagram itself (outerHTML) or hold one: look at the whole
  // page, diagrams already drawn are skipped.
  document.addEventListener("htmx:afterSwap", drawAll);
})();

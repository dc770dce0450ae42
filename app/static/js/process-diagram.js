/* The process's progress drawn by bpmn-js (the navigated viewer, served by the app): each
   [data-process-diagram] element loads its BPMN from data-xml-url, fits it, and marks the steps
   listed in data-done, data-current and data-failed (JSON arrays of BPMN element ids). */
(function () {
  "use strict";

  var MARKERS = { done: "step-done", current: "step-current", failed: "step-failed" };

  function ids(element, name) {
    try {
      var value = JSON.parse(element.dataset[name] || "[]");
      return Array.isArray(value) ? value : [];
    } catch (error) {
      return [];
    }
  }

  function failed(element) {
    element.textContent = "Le schéma du processus n'a pas pu être affiché.";
    element.classList.add("process-diagram-failed");
  }

  function draw(element) {
    if (element.dataset.drawn || typeof window.BpmnJS !== "function") {
      return;
    }
    element.dataset.drawn = "1";
    var viewer = new window.BpmnJS({ container: element });
    fetch(element.dataset.xmlUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        canvas.zoom("fit-viewport");
        Object.keys(MARKERS).forEach(function (name) {
          ids(element, name).forEach(function (id) {
            if (registry.get(id)) { canvas.addMarker(id, MARKERS[name]); }
          });
        });
        element.dataset.ready = "1";
      })
      .catch(function () { failed(element); });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-process-diagram]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.target); });
})();

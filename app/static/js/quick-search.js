// The quick-search box: arrows move through the results, Enter opens the one chosen (or the
// results page when none is), Escape closes the list, "/" anywhere else puts the cursor in the box.
(function () {
  "use strict";

  function options(list) {
    return Array.prototype.slice.call(list.querySelectorAll("[role=option]"));
  }

  function choose(input, list, index) {
    var all = options(list);
    all.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    if (index >= 0 && all[index]) {
      input.setAttribute("aria-activedescendant", all[index].id);
      all[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function current(list) {
    return options(list).findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
  }

  function close(input, list) {
    list.innerHTML = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("quick-search");
    var list = document.getElementById("quick-search-results");
    if (!input || !list) { return; }

    list.addEventListener("htmx:afterSwap", function () {
      input.setAttribute("aria-expanded", options(list).length ? "true" : "false");
      choose(input, list, -1);
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target === list) {
        input.setAttribute("aria-expanded", options(list).length ? "true" : "false");
      }
    });

    input.addEventListener("keydown", function (event) {
      var all = options(list), index = current(list);
      if (event.key === "ArrowDown" && all.length) {
        event.preventDefault();
        choose(input, list, (index + 1) % all.length);
      } else if (event.key === "ArrowUp" && all.length) {
        event.preventDefault();
        choose(input, list, index <= 0 ? all.length - 1 : index - 1);
      } else if (event.key === "Enter" && index >= 0) {
        event.preventDefault();
        window.location.assign(all[index].querySelector("a").href);
      } else if (event.key === "Escape") {
        close(input, list);
      }
    });

    document.addEventListener("keydown", function (event) {
      var target = event.target;
      var typing = target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });

    document.addEventListener("click", function (event) {
      if (!input.form.contains(event.target)) { close(input, list); }
    });
  });
})();

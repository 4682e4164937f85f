/* Page behaviour that templates declare with data-* attributes (the Content-Security-Policy admits no inline
   script, no inline event handler and no style attribute): auto-submitting selects, meter widths, tree indents. */
(function () {
  "use strict";

  function apply(root) {
    root.querySelectorAll("[data-meter]").forEach(function (bar) {
      var value = Math.max(0, Math.min(100, parseFloat(bar.dataset.meter) || 0));
      bar.style.width = value + "%";  // CSSOM, which the policy allows, unlike a style attribute
    });
    root.querySelectorAll("[data-indent]").forEach(function (cell) {
      cell.style.paddingLeft = cell.dataset.indent;
    });
  }

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.requestSubmit();
    }
  });
  document.addEventListener("DOMContentLoaded", function () { apply(document); });
  document.addEventListener("htmx:load", function (event) { apply(event.target); });
})();

/* Page behaviour that templates declare with data-* attributes (the Content-Security-Policy admits no inline
   script, no inline event handler and no style attribute): auto-submitting selects, meter widths, tree indents,
   copy buttons and confirmations of irreversible actions. */
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
  // Copy buttons: <button data-copy="#selector"> copies that element's text and says so in its status region.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copy);
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    if (!source || !navigator.clipboard) {
      if (status) { status.textContent = "Select the text and copy it."; }
      return;
    }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      if (status) { status.textContent = "Copied."; }
    }, function () {
      if (status) { status.textContent = "Copying was refused: select the text and copy it."; }
    });
  });

  // Irreversible actions: a form with data-confirm="question" asks first, in a modal dialog (focus moves to it,
  // Escape or Cancel keeps the page as it was, the form is sent only after the confirming button).
  var dialog = null;
  function confirmDialog() {
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("role", "alertdialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.setAttribute("aria-describedby", "confirm-dialog-message");
    dialog.innerHTML = '<h2 id="confirm-dialog-title">Are you sure?</h2><p id="confirm-dialog-message"></p>' +
      '<div class="confirm-actions"><button type="button" class="btn" value="cancel">Cancel</button> ' +
      '<button type="button" class="btn btn-danger" value="confirm"></button></div>';
    dialog.addEventListener("click", function (event) {
      var button = event.target instanceof Element ? event.target.closest("button[value]") : null;
      if (button) { dialog.close(button.value); }
    });
    document.body.appendChild(dialog);
    return dialog;
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) { return; }
    if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
    event.preventDefault();
    event.stopPropagation();  // capture phase: htmx or any other handler on the form never sees it unconfirmed
    var box = confirmDialog();
    var submitter = event.submitter || null;
    box.querySelector("#confirm-dialog-title").textContent = form.dataset.confirmTitle || "Are you sure?";
    box.querySelector("#confirm-dialog-message").textContent = form.dataset.confirm;
    box.querySelector('button[value="confirm"]').textContent = form.dataset.confirmAction || "Confirm";
    box.returnValue = "";
    box.onclose = function () {
      if (box.returnValue === "confirm") {
        // A polled part of the page may have been swapped while the dialog was open: send its current twin.
        var live = form.isConnected ? form : document.querySelector('form[action="' + form.getAttribute("action") + '"]');
        if (!live) { return; }
        var button = submitter && submitter.name ? live.querySelector('[name="' + submitter.name + '"][value="' + submitter.value + '"]') : null;
        live.dataset.confirmed = "yes";
        live.requestSubmit(button || undefined);
      } else if (submitter) {
        submitter.focus();
      }
    };
    box.showModal();
    box.querySelector('button[value="cancel"]').focus();
  }, true);

  document.addEventListener("DOMContentLoaded", function () { apply(document); });
  document.addEventListener("htmx:load", function (event) { apply(event.target); });
})();

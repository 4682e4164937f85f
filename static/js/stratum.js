/* Page behaviour that templates declare with data-* attributes (the Content-Security-Policy admits no inline
   script, no inline event handler and no style attribute): auto-submitting selects, meter widths, tree indents,
   copy buttons, confirmations of irreversible actions, the deploy form's strategy fieldsets and step editor. */
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
    root.querySelectorAll("select[data-strategy-select]").forEach(showStrategy);
    root.querySelectorAll("[data-formset-row]").forEach(showStepFields);
    scrollables(root);
  }

  // A table wider than the screen scrolls inside its card; a keyboard user must be able to focus that region
  // to scroll it, so it joins the tab order while (and only while) it overflows.
  function scrollables(root) {
    root.querySelectorAll(".table-card, .card .table").forEach(function (region) {
      var overflows = region.scrollWidth > region.clientWidth + 1;
      if (overflows && !region.hasAttribute("tabindex")) {
        region.setAttribute("tabindex", "0");
        region.dataset.scrollFocus = "1";
      } else if (!overflows && region.dataset.scrollFocus) {
        region.removeAttribute("tabindex");
        delete region.dataset.scrollFocus;
      }
    });
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { scrollables(document); }, 150);
  });

  // Narrow screens: the main navigation collapses behind a Menu button (without JavaScript it simply wraps).
  document.documentElement.classList.add("js-nav");
  document.addEventListener("click", function (event) {
    var toggle = event.target instanceof Element ? event.target.closest(".nav-toggle") : null;
    if (!toggle) { return; }
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.closest(".topbar").classList.toggle("nav-open", open);
  });

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
  // A button may carry its own data-confirm (one form, several actions: only the irreversible one asks).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter || null;
    var asks = submitter && submitter.hasAttribute("data-confirm") ? submitter : form;
    if (!(form instanceof HTMLFormElement) || !asks.hasAttribute("data-confirm")) { return; }
    if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
    event.preventDefault();
    event.stopPropagation();  // capture phase: htmx or any other handler on the form never sees it unconfirmed
    var box = confirmDialog();
    box.querySelector("#confirm-dialog-title").textContent = asks.dataset.confirmTitle || "Are you sure?";
    box.querySelector("#confirm-dialog-message").textContent = asks.dataset.confirm;
    box.querySelector('button[value="confirm"]').textContent = asks.dataset.confirmAction || "Confirm";
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

  // Uploads with progress: a form with data-upload-progress is sent by XMLHttpRequest (fetch reports no upload
  // progress), its <progress> filled as the bytes go; a redirect opens the new page, an error replaces the form
  // with the answer's (every field error shown), and without JavaScript the form posts as usual.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-upload-progress") || event.defaultPrevented) {
      return;
    }
    var bar = form.querySelector("progress.upload-progress");
    var label = form.querySelector(".upload-progress-label");
    if (!bar || !window.XMLHttpRequest || !window.FormData) { return; }
    event.preventDefault();
    var button = form.querySelector('button[type="submit"]');
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    bar.hidden = false;
    bar.value = 0;
    if (button) { button.disabled = true; }
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      bar.max = e.total;
      bar.value = e.loaded;
      if (label) {
        label.textContent = e.loaded < e.total
          ? "Uploading: " + Math.round(100 * e.loaded / e.total) + "% of " + (e.total / 1048576).toFixed(1) + " MiB"
          : "Uploaded; checking and storing the files…";
      }
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 201 && xhr.getResponseHeader("Location")) {  // created: open it (its message waits there)
        window.location.assign(xhr.getResponseHeader("Location"));
        return;
      }
      var answer = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var fresh = answer.querySelector("form[data-upload-progress]");
      if (fresh) {
        form.replaceWith(document.importNode(fresh, true));
        var first = document.querySelector("form[data-upload-progress] .errorlist, form[data-upload-progress] [role=alert]");
        if (first) { first.scrollIntoView({block: "center"}); }
      } else {
        document.documentElement.replaceWith(document.importNode(answer.documentElement, true));
      }
    });
    xhr.addEventListener("error", function () {
      if (button) { button.disabled = false; }
      bar.hidden = true;
      if (label) { label.textContent = "The upload failed: the connection was lost. Try again."; }
    });
    xhr.send(new FormData(form));
  });

  // The deploy form: only the chosen strategy's fieldsets show (without JavaScript they all show, each labelled
  // with the strategies it serves); a canary step row shows only the field its kind uses.
  function showStrategy(select) {
    if (!select.form) { return; }
    select.form.querySelectorAll("[data-strategies]").forEach(function (set) {
      set.hidden = set.dataset.strategies.split(" ").indexOf(select.value) < 0;
    });
  }
  function showStepFields(row) {
    var kind = row.querySelector('select[name$="-kind"]');
    if (!kind) { return; }
    row.querySelectorAll("[data-step-field]").forEach(function (field) {
      field.hidden = field.dataset.stepField !== kind.value;
    });
  }
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement)) { return; }
    if (select.hasAttribute("data-strategy-select")) { showStrategy(select); }
    var row = select.closest("[data-formset-row]");
    if (row) { showStepFields(row); }
  });

  // Formsets (the canary step editor): "Add step" and "Remove" are submit buttons the server answers without
  // JavaScript; with it, rows are added from the formset's <template> and removed in place, the rest renumbered.
  function formsetParts(form, prefix) {
    return {
      list: form.querySelector('[data-formset="' + prefix + '"]'),
      template: form.querySelector('template[data-formset-template="' + prefix + '"]'),
      total: form.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]'),
      max: form.querySelector('input[name="' + prefix + '-MAX_NUM_FORMS"]')
    };
  }
  function renumber(list, prefix) {
    var pattern = new RegExp("^(id_)?" + prefix + "-(\\d+|__prefix__)-");
    Array.prototype.forEach.call(list.children, function (row, i) {
      row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(pattern, "$1" + prefix + "-" + i + "-")); }
        });
      });
      var remove = row.querySelector("[data-formset-remove]");
      if (remove) { remove.value = String(i); }
    });
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var add = target ? target.closest("[data-formset-add]") : null;
    var remove = target ? target.closest("[data-formset-remove]") : null;
    if (!add && !remove) { return; }
    var form = (add || remove).form;
    var prefix = add ? add.dataset.formsetAdd : (remove.closest("[data-formset]") || {dataset: {}}).dataset.formset;
    var parts = form && prefix ? formsetParts(form, prefix) : null;
    if (!parts || !parts.list || !parts.template || !parts.total) { return; }
    event.preventDefault();
    if (add) {
      var count = parts.list.children.length;
      if (parts.max && count >= parseInt(parts.max.value, 10)) { return; }
      parts.list.insertAdjacentHTML("beforeend", parts.template.innerHTML.replace(/__prefix__/g, String(count)));
      var row = parts.list.lastElementChild;
      showStepFields(row);
      row.querySelector("select, input").focus();
    } else {
      remove.closest("[data-formset-row]").remove();
      renumber(parts.list, prefix);
      form.querySelector('[data-formset-add="' + prefix + '"]').focus();
    }
    parts.total.value = String(parts.list.children.length);
  });

  document.addEventListener("DOMContentLoaded", function () { apply(document); });
  document.addEventListener("htmx:load", function (event) { apply(event.target); });
})();

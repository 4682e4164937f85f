/* Tab bars ([role=tablist][data-tabs]) whose tabs are links that htmx follows (hx-get, hx-push-url): the arrow
   keys, Home and End move between tabs (one tab in the tab order at a time), Enter or Space opens one; after htmx
   swaps the tab area in, the selected tab gets the focus back and scrolls into view on a narrow screen. */
(function () {
  "use strict";

  function tabsOf(list) { return Array.prototype.slice.call(list.querySelectorAll('[role="tab"]')); }

  function move(tab, tabs, index) {
    var next = tabs[(index + tabs.length) % tabs.length];
    tabs.forEach(function (t) { t.setAttribute("tabindex", t === next ? "0" : "-1"); });
    next.focus();
    next.scrollIntoView({block: "nearest", inline: "nearest"});
  }

  document.addEventListener("keydown", function (event) {
    var tab = event.target instanceof Element ? event.target.closest('[data-tabs] [role="tab"]') : null;
    if (!tab) { return; }
    var tabs = tabsOf(tab.closest("[data-tabs]"));
    var index = tabs.indexOf(tab);
    var keys = {ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1};
    if (Object.prototype.hasOwnProperty.call(keys, event.key)) {
      event.preventDefault();
      move(tab, tabs, keys[event.key]);
    } else if (event.key === " ") {  // a link opens on Enter by itself; a tab also opens on Space
      event.preventDefault();
      tab.click();
    }
  });

  var refocus = false;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt instanceof Element && elt.matches('[data-tabs] [role="tab"]')) {
      refocus = document.activeElement === elt || elt.contains(document.activeElement);
    }
  });

  function reveal(root, focus) {
    root.querySelectorAll('[data-tabs] [role="tab"][aria-selected="true"]').forEach(function (tab) {
      if (focus) { tab.focus(); }
      var bar = tab.closest("[data-tabs]");
      if (bar.scrollWidth > bar.clientWidth) { bar.scrollLeft = tab.offsetLeft - bar.offsetLeft - 16; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { reveal(document, false); });
  document.addEventListener("htmx:afterSettle", function () {
    reveal(document, refocus);
    refocus = false;
  });
})();

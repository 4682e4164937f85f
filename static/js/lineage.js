/* Open a lineage node when its marker is clicked (charts.js draws the figure; each point carries its URL). */
(function () {
  "use strict";

  function wire(root) {
    root.querySelectorAll("[data-lineage-chart] .chart-plot").forEach(function (plot) {
      if (plot.dataset.clickWired || typeof plot.on !== "function") { return; }
      plot.dataset.clickWired = "1";
      plot.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (point && typeof point.customdata === "string" && point.customdata.charAt(0) === "/") {
          window.location.assign(point.customdata);
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (event) { wire(event.target); });
  document.addEventListener("htmx:beforeHistorySave", function () {  // charts.js empties the plots: wire anew later
    document.querySelectorAll("[data-lineage-chart] .chart-plot").forEach(function (plot) {
      delete plot.dataset.clickWired;
    });
  });
  document.addEventListener("htmx:historyRestore", function () { wire(document); });
})();

/* Lineage graph clicks (charts.js draws the figure; each point carries a URL): a node opens its page, a group of
   one kind (a trace whose meta is "lineage-group") asks for the graph again with that kind shown node by node. */
(function () {
  "use strict";

  function wire(root) {
    root.querySelectorAll("[data-lineage-chart] .chart-plot").forEach(function (plot) {
      if (plot.dataset.clickWired || typeof plot.on !== "function") { return; }
      plot.dataset.clickWired = "1";
      plot.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (!point || typeof point.customdata !== "string" || point.customdata.charAt(0) !== "/") { return; }
        var container = plot.closest(".lineage-graph");
        if (point.data && point.data.meta === "lineage-group" && container && window.htmx) {
          window.htmx.ajax("GET", point.customdata, {target: container, swap: "outerHTML"});
        } else {
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
  document.addEventListener("stratum:chart-drawn", function (event) { wire(event.target.parentNode || document); });
})();

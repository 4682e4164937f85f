/* Draw every Plotly figure embedded as JSON (charts.py builds them) inside a [data-plotly-chart] element; mark
   each drawn plot (data-drawn-at) and announce it (stratum:chart-drawn) once Plotly has finished. */
(function () {
  "use strict";

  function draw(root) {
    if (typeof window.Plotly === "undefined") { return; }
    root.querySelectorAll("[data-plotly-chart]").forEach(function (chart) {
      var plot = chart.querySelector(".chart-plot");
      var data = chart.querySelector('script[type="application/json"]');
      if (!plot || !data || plot.dataset.drawn) { return; }
      var figure = JSON.parse(data.textContent);
      plot.dataset.drawn = "1";
      window.Plotly.newPlot(plot, figure.data, figure.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]
      }).then(function () {
        // When the figure was drawn (ms since navigation start): the lineage render benchmark reads it.
        plot.dataset.drawnAt = window.performance.now().toFixed(1);
        plot.dispatchEvent(new CustomEvent("stratum:chart-drawn", {bubbles: true}));
      });
    });
  }

  // htmx keeps a copy of the page when a link pushes a new address (the version page's tabs), to put back on Back.
  // A drawn chart would come back as markup whose inline styles the Content-Security-Policy refuses (plotly
  // positions its layers with them): empty the charts before the copy is taken and draw them again on the way back.
  function purge(root) {
    if (typeof window.Plotly === "undefined") { return; }
    root.querySelectorAll("[data-plotly-chart] .chart-plot[data-drawn]").forEach(function (plot) {
      window.Plotly.purge(plot);
      plot.replaceChildren();
      delete plot.dataset.drawn;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  document.addEventListener("htmx:beforeHistorySave", function () { purge(document); });
  document.addEventListener("htmx:historyRestore", function () { draw(document); });
})();

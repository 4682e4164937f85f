/* Draw every Plotly figure embedded as JSON (charts.py builds them) inside a [data-plotly-chart] element. */
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
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();

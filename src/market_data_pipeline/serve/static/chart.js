// Candles and volume of one symbol and resolution, drawn with Lightweight Charts.
// Shared by the service's page and by `mdp bars --plot FILE.html`.
"use strict";

function mdpCandles(element, points) {
  const charts = window.LightweightCharts;
  if (element.mdpChart) {
    element.mdpChart.remove();
  }
  const chart = charts.createChart(element, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#333" },
    timeScale: { timeVisible: true, secondsVisible: true },
  });
  const candles = chart.addSeries(charts.CandlestickSeries, {});
  const volume = chart.addSeries(charts.HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "",
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
  candles.setData(points.map((p) => ({
    time: p.time, open: p.open, high: p.high, low: p.low, close: p.close,
  })));
  volume.setData(points.map((p) => ({
    time: p.time,
    value: p.volume,
    color: p.close >= p.open ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)",
  })));
  chart.timeScale().fitContent();
  element.mdpChart = chart;
  // What was drawn, for whoever checks the chart against the table.
  element.dataset.candles = String(candles.data().length);
  return chart;
}

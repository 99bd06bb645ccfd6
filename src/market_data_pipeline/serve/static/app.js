// The page of `mdp serve`: runs with live progress, a run's flow over time, and stored bars.
"use strict";

const state = { selected: null, flow: null, series: "", token: null };

function token() {
  if (state.token === null) {
    const match = /token=([^&]+)/.exec(location.hash);
    state.token = match ? decodeURIComponent(match[1]) : sessionStorage.getItem("mdp-token") || "";
    if (match) {
      sessionStorage.setItem("mdp-token", state.token);
      history.replaceState(null, "", location.pathname);
    }
  }
  return state.token;
}

async function api(path) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    document.getElementById("token-box").hidden = false;
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    throw new Error(path + ": HTTP " + response.status);
  }
  return response.json();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) {
    td.className = className;
  }
  row.appendChild(td);
  return td;
}

function number(value, digits) {
  return value == null ? "" : Number(value).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
}

function renderRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  document.getElementById("runs-empty").hidden = runs.length > 0;
  for (const run of runs) {
    const p = run.progress || {};
    const row = document.createElement("tr");
    row.dataset.runId = run.id;
    row.dataset.status = run.status;
    if (run.id === state.selected) {
      row.className = "selected";
    }
    cell(row, run.id, "id");
    cell(row, run.kind);
    cell(row, run.status, "status status-" + run.status);
    const read = cell(row, "", "read");
    if (p.share_read != null) {
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = Math.round(p.share_read * 100) + "%";
      bar.appendChild(fill);
      read.append(bar, " " + (p.share_read * 100).toFixed(1) + "%");
    }
    cell(row, number(p.ticks), "num ticks");
    cell(row, number(p.ticks_per_s), "num");
    cell(row, number(p.bars_written), "num bars");
    cell(row, p.level || "", "level-" + (p.level || ""));
    cell(row, p.scale == null ? "" : Math.round(p.scale * 100) + "%", "num");
    cell(row, p.event_time || "");
    cell(row, run.error || "", "error");
    row.addEventListener("click", () => { state.selected = run.id; state.flow = null; refreshFlow(); });
    body.appendChild(row);
  }
}

function flowChart() {
  if (state.flow === null) {
    const element = document.getElementById("flow");
    element.replaceChildren();
    const charts = window.LightweightCharts;
    const chart = charts.createChart(element, {
      autoSize: true,
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { visible: true },
      leftPriceScale: { visible: true },
    });
    state.flow = {
      throughput: chart.addSeries(charts.LineSeries, { color: "#0b5cad", priceScaleId: "left", title: "ticks/s" }),
      scale: chart.addSeries(charts.LineSeries, { color: "#1b7f3a", priceScaleId: "right", title: "scale" }),
      level: chart.addSeries(charts.HistogramSeries, { color: "rgba(176,0,32,0.35)", priceScaleId: "right", title: "level" }),
      chart,
    };
  }
  return state.flow;
}

async function refreshFlow() {
  if (!state.selected) {
    return;
  }
  document.getElementById("flow-run").textContent = "of run " + state.selected;
  const history = await api("/v1/runs/" + state.selected + "/history");
  const bySecond = new Map();
  for (const sample of history.samples) {
    bySecond.set(Math.floor(sample.t), sample);  // one point a second, the latest wins
  }
  const samples = [...bySecond.entries()].sort((a, b) => a[0] - b[0]);
  const levels = { ok: 0, soft: 1, hard: 2 };
  const flow = flowChart();
  flow.throughput.setData(samples.map(([t, s]) => ({ time: t, value: s.ticks_per_s })));
  flow.scale.setData(samples.map(([t, s]) => ({ time: t, value: s.scale })));
  flow.level.setData(samples.map(([t, s]) => ({ time: t, value: levels[s.level] || 0 })));
}

async function refreshSeries() {
  const answer = await api("/v1/bars/series");
  const select = document.getElementById("series");
  const keys = answer.series.map((s) => s.symbol + " " + s.resolution);
  const current = [...select.options].map((o) => o.value);
  if (keys.join("|") !== current.join("|")) {
    select.replaceChildren(...answer.series.map((s) => {
      const option = document.createElement("option");
      option.value = s.symbol + " " + s.resolution;
      option.textContent = s.symbol + " " + s.resolution + " (" + s.bars + " bars)";
      option.dataset.bars = String(s.bars);
      return option;
    }));
    if (state.series && keys.includes(state.series)) {
      select.value = state.series;
    }
  }
  const chosen = select.value;
  const option = select.selectedOptions[0];
  const count = option ? Number(option.dataset.bars) : 0;
  if (chosen && (chosen !== state.series || count !== state.seriesCount)) {
    await drawBars(chosen, count);
  }
}

async function drawBars(key, count) {
  const [symbol, resolution] = key.split(" ");
  const query = "?symbol=" + encodeURIComponent(symbol) + "&resolution=" + encodeURIComponent(resolution);
  const answer = await api("/v1/bars" + query);
  const element = document.getElementById("chart");
  mdpCandles(element, answer.bars);
  element.dataset.series = key;
  document.getElementById("bar-count").textContent = count + " bars in the table";
  document.getElementById("bar-count").dataset.bars = String(count);
  state.series = key;
  state.seriesCount = count;
}

async function refresh() {
  try {
    const health = await api("/health");
    document.getElementById("health").textContent =
      health.service + " " + health.version + ": " + health.runs_active + " of " + health.max_runs + " runs active";
    renderRuns((await api("/v1/runs")).runs);
    await refreshSeries();
    await refreshFlow();
  } catch (error) {
    document.getElementById("health").textContent = String(error.message || error);
  }
}

document.getElementById("series").addEventListener("change", (event) => {
  const option = event.target.selectedOptions[0];
  drawBars(event.target.value, option ? Number(option.dataset.bars) : 0);
});
document.getElementById("token").addEventListener("change", (event) => {
  state.token = event.target.value;
  sessionStorage.setItem("mdp-token", state.token);
  refresh();
});
refresh();
setInterval(refresh, 1000);

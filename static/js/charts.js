// Time-series charts with uPlot: aligning series that have their own timestamps, and drawing
// (or redrawing) one chart per element. Labels are set by uPlot with textContent.
import uPlot from "../../vendor/uplot/dist/uPlot.esm.js";

export const COLORS = ["#0b5cad", "#b35900", "#116329", "#8250df", "#a40e26", "#1b7c83", "#6e7781", "#bf8700"];
const charts = [];

function width(el) {
  return Math.max(320, el.clientWidth || 800);
}

// Series with their own timestamps -> uPlot's aligned data (null where a series has no point).
export function align(seriesList) {
  const xs = [...new Set(seriesList.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = seriesList.map((s) => {
    const column = new Array(xs.length).fill(null);
    for (const [x, y] of s.points) column[index.get(x)] = y;
    return column;
  });
  return [xs, ...ys];
}

// Tick steps for counts: whole numbers only (no "1, 1, 1, 0, 0" from 0.25 steps rounded).
const INTEGER_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6, 1e7, 1e8, 1e9];

function yLabels(el, labels) {
  el.dataset.yTicks = labels.join("|");
  return labels;
}

// Draw `series` ({label, color?}) with aligned `data` into `el` over [since, until], replacing its chart;
// `integer` series (counts) get whole-number ticks.
export function draw(el, series, data, axisLabel, valueFormat, since, until, integer = false) {
  const old = charts.find((c) => c.el === el);
  if (old) {
    old.plot.destroy();
    charts.splice(charts.indexOf(old), 1);
  }
  const plot = new uPlot({
    width: width(el), height: 220,
    scales: { x: { time: true, min: since, max: until } },
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
      points: { show: false }, value: (_u, v) => (v == null ? "–" : valueFormat(v)),
    }))],
    // The y labels drawn on the canvas are also kept in data-y-ticks, readable from the DOM.
    axes: [{}, { label: axisLabel, values: (_u, ticks) => yLabels(el, ticks.map(valueFormat)), size: 70,
      ...(integer ? { incrs: INTEGER_INCRS } : {}) }],
  }, data, el);
  charts.push({ el, plot });
}

window.addEventListener("resize", () => {
  for (const { el, plot } of charts) plot.setSize({ width: width(el), height: 220 });
});

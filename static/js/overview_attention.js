// Overview: the "Needs attention" strip and each card's last-hour sparkline, from
// /api/overview/attention; re-read every 10 s and soon after a source's status changes.
// Everything in an item comes from a watched system: it is written with textContent only.
const SVG = "http://www.w3.org/2000/svg";
const EVERY_MS = 10000;
const SOON_MS = 2000;
const LEVELS = { down: "✕", degraded: "▲" };
const strip = document.getElementById("attention");
const root = strip.dataset.root || "";
const list = strip.querySelector(".attention-list");
let timer = null;
let due = Infinity;

// Load again in `ms`, unless a load is already due sooner.
function schedule(ms) {
  const at = Date.now() + ms;
  if (timer !== null && at >= due) return;
  clearTimeout(timer);
  due = at;
  timer = setTimeout(() => {
    timer = null;
    due = Infinity;
    load();
  }, ms);
}

export function refreshSoon() {
  schedule(SOON_MS);
}

async function load() {
  try {
    const response = await fetch(`${root}/api/overview/attention`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    showItems(body.items || []);
    for (const card of document.querySelectorAll("#cards > article.card")) {
      showSpark(card.querySelector('[data-field="spark"]'), (body.sparklines || {})[card.dataset.key]);
    }
  } catch (err) {
    console.warn("needs attention:", err);
  } finally {
    schedule(EVERY_MS);
  }
}

function item(entry) {
  const li = document.createElement("li");
  li.dataset.key = entry.key;
  li.dataset.level = entry.level in LEVELS ? entry.level : "degraded";
  const symbol = document.createElement("span");
  symbol.className = "attention-symbol";
  symbol.setAttribute("aria-hidden", "true");
  symbol.textContent = LEVELS[li.dataset.level];
  const link = document.createElement("a");
  link.href = root + entry.href;
  link.textContent = entry.title;
  const at = document.createElement("time");
  at.dataset.ts = entry.at ?? "";
  if (entry.at) {
    at.dateTime = new Date(entry.at * 1000).toISOString();
    at.title = at.dateTime;
  }
  li.append(symbol, link, " ", at);
  if (entry.detail) {
    const detail = document.createElement("span");
    detail.className = "attention-detail";
    detail.textContent = entry.detail;
    detail.title = entry.detail;
    li.append(detail);
  }
  return li;
}

function showItems(items) {
  strip.dataset.state = items.length ? "attention" : "ok";
  strip.querySelector(".attention-loading").hidden = true;
  strip.querySelector(".attention-ok").hidden = items.length > 0;
  const json = JSON.stringify(items);
  if (list.dataset.json === json) return; // unchanged: leave focus and selection alone
  list.dataset.json = json;
  list.replaceChildren(...items.map(item)); // overview.js's ticker writes each <time>'s age
}

function showSpark(figure, spark) {
  if (!figure) return;
  const series = spark ? spark.series.filter((s) => s.points.length) : [];
  figure.hidden = !series.length;
  if (!series.length) return;
  const json = JSON.stringify(spark);
  if (figure.dataset.json === json) return;
  figure.dataset.json = json;
  const width = 240;
  const height = 36;
  const all = series.flatMap((s) => s.points);
  const end = Math.max(...all.map(([ts]) => ts));
  // Up to the last 60 minutes; a source watched for less fills the width with what there is.
  const start = Math.max(end - 3540, Math.min(...all.map(([ts]) => ts)));
  const minutes = Math.round((end - start) / 60) + 1;
  const peak = Math.max(...all.map(([, v]) => v));
  const top = Math.max(spark.integer ? Math.ceil(peak) : peak, 1);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  series.forEach((s, index) => {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", `spark-line spark-${index}`);
    line.dataset.series = s.name;
    const xy = s.points.map(([ts, v]) => [end > start ? ((ts - start) / (end - start)) * width : width,
      height - 2 - (v / top) * (height - 4)]);
    line.setAttribute("points", xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    // The latest minute as a dot: a series of one point still shows.
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("class", `spark-dot spark-${index}`);
    dot.setAttribute("cx", xy[xy.length - 1][0].toFixed(1));
    dot.setAttribute("cy", xy[xy.length - 1][1].toFixed(1));
    dot.setAttribute("r", "2");
    svg.append(line, dot);
  });
  figure.querySelector(".spark-plot").replaceChildren(svg);
  // The numbers in words, so the lines are never the only way to read them.
  const parts = series.map((s) => {
    const total = s.points.reduce((sum, [, v]) => sum + v, 0);
    const last = s.points[s.points.length - 1][1];
    return spark.integer ? `${total.toLocaleString("en-US")} ${s.name}` : `${s.name} now ${Math.round(last).toLocaleString("en-US")}`;
  });
  figure.querySelector(".spark-caption").textContent = `last ${minutes === 60 ? "hour" : `${minutes} min`} (${spark.unit}, max ${Math.round(top).toLocaleString("en-US")}): ${parts.join(", ")}`;
}

load();

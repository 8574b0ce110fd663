// What every Consul page shares: the page's source and API root, check states (symbol and word,
// as dashboard/views/consul_pages.py CHECK_STATES), check output as text, and the controls'
// enable flag. Everything a watched system reports is untrusted: only ever set with textContent.
import { subscribe } from "./live.js";
import { bindActions } from "./celery_actions.js";
import { el } from "./celery_common.js";

const root = document.getElementById("consul");
export const source = root ? root.dataset.source : "";
export const base = root ? root.dataset.root : "";
export const api = `${base}/api/consul/${encodeURIComponent(source)}`;

export const STATES = {
  passing: ["✓", "passing"], warning: ["▲", "warning"], critical: ["✕", "critical"], maintenance: ["⏸", "maintenance"],
};

export function setState(node, state) {
  const [symbol, label] = STATES[state] || ["?", String(state || "unknown")];
  node.dataset.state = state;
  node.querySelector(".state-symbol").textContent = symbol;
  node.querySelector(".state-label").textContent = label;
}

export function stateBadge(state) {
  const span = el("span", null, "check-state");
  span.dataset.field = "state";
  span.append(el("span", "", "state-symbol"), document.createTextNode(" "), el("span", "", "state-label"));
  span.querySelector(".state-symbol").setAttribute("aria-hidden", "true");
  setState(span, state);
  return span;
}

// A check's output as templates/consul/_macros.html renders it: long or many-lined text collapsed.
export function setOutput(holder, text) {
  const value = text || "";
  if (value.length > 120 || value.includes("\n")) {
    const details = el("details", null, "long-text");
    const summary = el("summary");
    const first = value.split("\n")[0];
    summary.append(el("code", first.length > 100 ? first.slice(0, 99) + "…" : first, "preview"));
    details.append(summary, el("pre", value, "task-text"));
    holder.replaceChildren(details);
  } else {
    holder.replaceChildren(...(value ? [el("code", value)] : []));
  }
}

export async function getJSON(path) {
  const response = await fetch(`${api}${path}`, { credentials: "same-origin" });
  if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
  return response.json();
}

// Re-read the page's data at most every 150 ms while changes arrive for this source.
export function follow(wanted, reload) {
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => reload().catch((err) => console.warn("consul:", err.message)), 150);
  };
  subscribe(`consul/${source}`, later, (delta) => {
    if (Object.entries(delta).some(([key, item]) => wanted(key, item))) later();
  });
}

// Controls whose maintenance flag is a hidden [data-enable] in the form.
export function bindControls() {
  const enable = (request, form) => {
    request.params.enable = form.querySelector("[data-enable]").dataset.enable === "true";
  };
  bindActions({ "consul.maintenance": enable, "consul.node_maintenance": enable });
}

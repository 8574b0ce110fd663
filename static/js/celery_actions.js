// Controls: every <form class="action"> (templates/celery/_macros.html) posts to
// /api/actions/<name> with the CSRF header; actions that need it are confirmed in a real
// <dialog> first and then carry "confirm": true. The outcome and each worker's reply are shown
// under the button, as text.
import { base, el, taskUrl } from "./celery_common.js";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const dialog = document.getElementById("confirm-dialog");

// Ask in the page's <dialog>; resolves true only when "Confirm" was pressed.
export function confirmDialog(message, what) {
  return new Promise((resolve) => {
    dialog.querySelector(".confirm-message").textContent = message;
    dialog.querySelector(".confirm-what").textContent = what || "";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
    dialog.querySelector("button.cancel").focus(); // the safe choice has the focus
  });
}

function readParams(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-param]")) {
    const raw = input.value.trim();
    if (raw === "" && input.dataset.optional === "true") continue;
    const type = input.dataset.type || "str";
    if (type === "int") {
      if (!/^-?\d+$/.test(raw)) throw new Error(`${input.dataset.param}: a whole number, please`);
      params[input.dataset.param] = Number.parseInt(raw, 10);
    } else if (type === "float") {
      const value = Number(raw);
      if (raw === "" || !Number.isFinite(value)) throw new Error(`${input.dataset.param}: a number, please`);
      params[input.dataset.param] = value;
    } else {
      params[input.dataset.param] = raw;
    }
  }
  return params;
}

export async function postAction(name, sourceName, target, params) {
  let response;
  try {
    response = await fetch(`${base}/api/actions/${encodeURIComponent(name)}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ source: sourceName, target, params }),
    });
  } catch (err) {
    return { ok: false, outcome: "failed", error: `no answer from jobdash: ${err.message}` };
  }
  try {
    return await response.json();
  } catch {
    return { ok: false, outcome: "failed", status: response.status, error: `HTTP ${response.status}` };
  }
}

function replyList(entries) {
  const list = el("ul", null, "replies");
  for (const [who, text] of entries) {
    const item = el("li");
    item.dataset.ok = String(String(text).startsWith("ok"));
    item.append(el("span", who, "reply-who"), document.createTextNode(": "), el("span", String(text), "reply-text"));
    list.append(item);
  }
  return list;
}

function taskLink(uuid, label) {
  const a = el("a", label || uuid, "uuid");
  a.href = taskUrl(uuid);
  return a;
}

// Show an action's answer: {ok, outcome, message|error, details}.
export function showOutcome(out, body) {
  const outcome = body.outcome || (body.ok ? "ok" : "failed");
  out.dataset.outcome = outcome;
  const head = el("p", null, "outcome");
  head.append(el("strong", outcome === "ok" ? "✓ done" : outcome === "refused" ? "⊘ refused" : "✕ failed"),
    document.createTextNode(": "), el("span", body.message || body.error || "", "outcome-text"));
  const parts = [head];
  const details = body.details || {};
  if (details.new_task) {
    const p = el("p", "new task: ", "new-task");
    p.append(taskLink(details.new_task));
    parts.push(p);
  }
  if (details.workers && typeof details.workers === "object") parts.push(replyList(Object.entries(details.workers)));
  if (details.replies && typeof details.replies === "object") parts.push(replyList(Object.entries(details.replies)));
  if (Array.isArray(details.tasks)) {
    const list = el("ul", null, "replies");
    for (const t of details.tasks) {
      const item = el("li");
      item.dataset.ok = String(!t.error);
      item.append(taskLink(t.retried || ""), document.createTextNode(t.error ? `: ${t.error}` : " → "));
      if (t.new_task) item.append(taskLink(t.new_task));
      list.append(item);
    }
    parts.push(list);
  }
  out.replaceChildren(...parts);
}

function showNote(out, outcome, text) {
  out.dataset.outcome = outcome;
  out.replaceChildren(el("p", text, "outcome"));
}

// hooks[name](request, form) may change request.{target, params, confirmText} or throw to stop.
// `scope` limits the binding to the forms inside it (a row added after the page loaded).
export function bindActions(hooks = {}, scope = document) {
  for (const form of scope.querySelectorAll("form.action")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = form.querySelector(".action-result");
      const button = form.querySelector("button.action-button");
      const request = {
        name: form.dataset.action, source: form.dataset.source, target: form.dataset.target,
        confirm: form.dataset.confirm === "true", confirmText: form.dataset.confirmText || "", params: {},
      };
      button.disabled = true;
      try {
        try {
          request.params = readParams(form);
          const hook = hooks[request.name];
          if (hook) await hook(request, form);
        } catch (err) {
          showNote(out, "refused", err.message);
          return;
        }
        if (request.confirm) {
          const what = `${request.name} on ${request.source}: ${request.target}`;
          if (!(await confirmDialog(request.confirmText || `Run ${request.name}?`, what))) {
            showNote(out, "cancelled", "cancelled: nothing was sent");
            return;
          }
          request.params.confirm = true;
        }
        showNote(out, "pending", "working…");
        showOutcome(out, await postAction(request.name, request.source, request.target, request.params));
      } finally {
        button.disabled = false;
      }
    });
  }
}

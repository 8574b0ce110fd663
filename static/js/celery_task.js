// Task detail: the controls, ticking times, and a note (not a reload) when the task changes.
import { subscribe } from "./live.js";
import { el, setState, source, taskUrl, tickTimes } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";

const uuid = document.getElementById("task-uuid").textContent;

bindActions();
tickTimes();

// A retry jobdash just sent of this task joins "Retried as" at once, as the server would list it.
function addRetry(item) {
  let box = document.getElementById("retried-by");
  if (!box) {
    const heading = el("h3", "Retried as");
    box = el("div");
    box.id = "retried-by";
    box.append(el("ul", null, "related"));
    document.getElementById("retry-of").closest("dl").after(heading, box);
  }
  if (box.querySelector(`a[href="${taskUrl(item.uuid)}"]`)) return;
  const state = el("span", null, "task-state");
  const symbol = el("span", null, "state-symbol");
  symbol.setAttribute("aria-hidden", "true");
  state.append(symbol, " ", el("span", null, "state-label"));
  setState(state, item.state || "PENDING");
  const link = el("a", item.uuid);
  link.href = taskUrl(item.uuid);
  const li = el("li");
  li.append(state, " ", link, " ", el("span", item.name || "?", "task-name"));
  box.querySelector("ul").append(li);
}

subscribe(`celery/${source}`, () => {}, (delta) => {
  for (const item of Object.values(delta)) if (item && item.retry_of === uuid) addRetry(item);
  const item = delta[`task:${uuid}`];
  if (!item || document.getElementById("changed")) return;
  const note = el("p", `This task is now ${String(item.state || "").toLowerCase()}. `, "notice changed");
  note.id = "changed";
  note.setAttribute("role", "status");
  const link = el("a", "Reload to see it");
  link.href = window.location.pathname;
  note.append(link);
  document.querySelector(".task-head").after(note);
});

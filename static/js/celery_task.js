// Task detail: the controls, ticking times, and a note (not a reload) when the task changes.
import { subscribe } from "./live.js";
import { el, source, tickTimes } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";

const uuid = document.getElementById("task-uuid").textContent;

bindActions();
tickTimes();

subscribe(`celery/${source}`, () => {}, (delta) => {
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

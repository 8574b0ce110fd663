// Nodes: state, node checks and maintenance follow the live room in place.
import { tickTimes } from "./celery_common.js";
import { bindControls, follow, getJSON, setOutput, setState } from "./consul_common.js";

const table = document.getElementById("nodes");

async function reload() {
  const { nodes } = await getJSON("/nodes");
  for (const node of nodes) {
    const row = table.querySelector(`tr.node[data-node="${CSS.escape(node.node)}"]`);
    if (!row) continue;
    row.dataset.state = node.state;
    setState(row.querySelector('[data-field="state"]'), node.state);
    row.querySelector('span[data-field="maintenance"]').textContent = node.maintenance || "–";
    for (const check of node.checks) {
      const item = row.querySelector(`li[data-key="${CSS.escape(`${node.node}/${check.check_id}`)}"]`);
      if (!item) continue;
      setState(item.querySelector('[data-field="state"]'), check.status);
      setOutput(item.querySelector('[data-field="output"]'), check.output);
    }
  }
}

follow((key, item) => key === "catalog" || item === null || item.service === "", reload);
bindControls();
tickTimes();

// Services list: re-read from /api/consul/<source>/services (same filters) whenever a check or
// the catalog of this source changes, and redraw the rows from <template id="service-row">.
import { base, follow, getJSON, setState, source } from "./consul_common.js";

const table = document.getElementById("services");
const template = document.getElementById("service-row");
const FIELDS = ["instances", "passing", "warning", "critical", "maintenance"];

function row(service) {
  const tr = template.content.firstElementChild.cloneNode(true);
  tr.dataset.name = service.name;
  setState(tr.querySelector('[data-field="state"]'), service.state);
  tr.dataset.state = service.state;
  const link = tr.querySelector('[data-field="name"]');
  link.textContent = service.name;
  link.href = `${base}/consul/${encodeURIComponent(source)}/services/${encodeURIComponent(service.name)}`;
  tr.querySelector('[data-field="tags"]').textContent = (service.tags || []).join(", ");
  for (const field of FIELDS) tr.querySelector(`[data-field="${field}"]`).textContent = String(service[field]);
  return tr;
}

async function reload() {
  const query = table.dataset.query;
  const { services } = await getJSON(`/services${query ? `?${query}` : ""}`);
  table.querySelector("tbody").replaceChildren(...services.map(row));
  document.getElementById("service-count").textContent = String(services.length);
  document.getElementById("no-services").hidden = services.length > 0;
}

follow(() => true, reload);

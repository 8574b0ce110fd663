// The topics a source's groups consume, re-read from the API (at most once a second) whenever the
// source's room reports a poll. Rows are cloned from the page's <template> and filled with
// textContent only: topic names come from the broker.
import { rereader, subscribe } from "./live.js";
import { field, getJson, rate, source, sync, topicUrl } from "./kafka_common.js";

const MIN_GAP_MS = 1000;

function fillTopic(tr, t) {
  const link = field(tr, "topic");
  link.textContent = t.topic;
  link.href = topicUrl(t.topic);
  field(tr, "partitions").textContent = String(t.partitions);
  field(tr, "produce_rate").textContent = rate(t.produce_rate);
  field(tr, "consumers").textContent = String(Object.keys(t.consumers || {}).length);
}

async function refresh() {
  try {
    const { topics } = await getJson("/topics");
    sync(document.querySelector("#topics tbody"), document.getElementById("topic-row"), topics,
      (t) => t.topic, "topic", fillTopic);
    document.getElementById("topics").hidden = topics.length === 0;
    document.getElementById("no-topics").hidden = topics.length > 0;
  } catch (err) {
    console.warn("kafka topics:", err); // the next poll's delta tries again
  }
}

const schedule = rereader(refresh, MIN_GAP_MS);
subscribe(`kafka/${source}`, () => schedule(), () => schedule());

// Live updates over Socket.IO (protocol: dashboard/live.py).
// On every connect, including automatic reconnects, each subscribed room is joined again and
// its state replaced by the snapshot; deltas then replace items by key (null removes one).
import { io } from "../../vendor/socket.io-client/dist/socket.io.esm.min.js";

const rooms = new Map(); // room -> { items: Map, onSnapshot, onDelta }
const watchers = new Set(); // connection listeners: fn({ state, transport })
let socket = null;
let connection = { state: "connecting", transport: "" };

const LABELS = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", refused: "not live: reload" };
const TITLES = {
  live: "live updates",
  refused: "the server refused the live connection (logged out?): reload the page",
};

function setConnection(state) {
  const transport = state === "live" && socket.io.engine ? socket.io.engine.transport.name : "";
  connection = { state, transport };
  showConnection(connection);
  for (const fn of watchers) fn(connection);
}

// The indicator in base.html: data-state and data-transport for CSS and tests, text for people.
function showConnection({ state, transport }) {
  const el = document.getElementById("conn");
  if (!el) return;
  el.dataset.state = state;
  el.dataset.transport = transport;
  el.querySelector(".conn-label").textContent = LABELS[state];
  el.title = TITLES[state] ? `${TITLES[state]}${transport ? ` (${transport})` : ""}` : "not connected: figures may be stale";
}

function isOlder(item, held) {
  return typeof item.updated_at === "number" && typeof held?.updated_at === "number" && item.updated_at < held.updated_at;
}

function join(room) {
  socket.emit("join", { room });
}

function connect() {
  const path = document.body.dataset.socketioPath || "/socket.io";
  socket = io("/live", { path, transports: ["websocket", "polling"], tryAllTransports: true });
  socket.on("connect", () => {
    setConnection("live");
    socket.io.engine.on("upgrade", () => setConnection("live"));
    for (const room of rooms.keys()) join(room);
  });
  socket.on("disconnect", (reason) => {
    setConnection("reconnecting");
    // The client reconnects by itself except after a server-side disconnect.
    if (reason === "io server disconnect") socket.connect();
  });
  // socket.active: the client will retry by itself; otherwise the server said no (e.g. logged out).
  socket.on("connect_error", () => setConnection(socket.active ? "reconnecting" : "refused"));
  socket.on("error", (err) => console.warn("live:", err));
  socket.on("snapshot", ({ room, items }) => {
    const sub = rooms.get(room);
    if (!sub) return;
    sub.items = new Map(Object.entries(items || {}));
    sub.onSnapshot(sub.items);
  });
  socket.on("delta", ({ room, items }) => {
    const sub = rooms.get(room);
    if (!sub) return;
    const applied = {};
    for (const [key, item] of Object.entries(items || {})) {
      // A delta queued before the snapshot was read may be older than it: keep the newer item.
      if (item !== null && isOlder(item, sub.items.get(key))) continue;
      applied[key] = item;
      if (item === null) sub.items.delete(key);
      else sub.items.set(key, item);
    }
    if (Object.keys(applied).length) sub.onDelta(applied, sub.items);
  });
}

// Follow a room: onSnapshot(Map key->item) after each (re)join, onDelta({key: item|null}, Map).
export function subscribe(room, onSnapshot, onDelta) {
  rooms.set(room, { items: new Map(), onSnapshot, onDelta });
  if (!socket) {
    setConnection("connecting");
    connect();
  } else if (socket.connected) {
    join(room);
  }
}

// Call fn({ state: "connecting" | "live" | "reconnecting" | "refused", transport }) now and on each change.
export function onConnection(fn) {
  watchers.add(fn);
  fn(connection);
}

// A page's re-read of its API on live changes: `read` runs at most once every `gapMs` and never two at a
// time; asked for while one runs, it runs once more after. Returns the function that asks for a read.
export function rereader(read, gapMs) {
  let last = 0;
  let timer = null;
  let running = false;
  let again = false;
  async function run() {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await read();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }
  function schedule() {
    if (timer === null) timer = setTimeout(run, Math.max(0, last + gapMs - Date.now()));
  }
  return schedule;
}

// Aspen console: reads the node's /console/stream (Server-Sent Events, parsed here because
// EventSource cannot send an Authorization header) and draws the members, charts and timeline.
"use strict";

const WINDOW_MS = 5 * 60 * 1000;
const KEY = "aspen.password";
const COLORS = ["#2f6fdf", "#d64545", "#1f9d55", "#d69e2e", "#8a4fd6", "#1aa3a3", "#c2558a"];
const KIND_COLORS = {
  election: "#2f6fdf", transfer: "#8a4fd6", membership: "#d69e2e", snapshot: "#1aa3a3",
  restart: "#1f9d55", down: "#d64545", up: "#1f9d55",
};

const state = {
  members: [], leader: null, self: null, now: 0,
  points: {},   // node id -> [{t, reads, writes, p50, p99, log, snapshot_index, rss, clients}]
  events: [],   // newest last
  connected: false, charts: {},
};
window.aspenConsole = state;  // (the browser test reads it)

const $ = (id) => document.getElementById(id);

function authHeaders() {
  const pw = sessionStorage.getItem(KEY);
  return pw ? { Authorization: "Bearer " + pw } : {};
}

function showLogin(message) {
  $("login").hidden = false;
  $("main").hidden = true;
  $("login-error").textContent = message || "";
}

function setConn(on, text) {
  state.connected = on;
  const el = $("conn");
  el.textContent = text;
  el.className = "badge " + (on ? "on" : "off");
}

// -- the stream ------------------------------------------------------------------------------

let streamAbort = null;

async function connect() {
  if (streamAbort) streamAbort.abort();
  const abort = new AbortController();
  streamAbort = abort;
  let resp;
  try {
    resp = await fetch("/console/stream", { headers: authHeaders(), signal: abort.signal,
                                            cache: "no-store" });
  } catch (err) {
    if (abort.signal.aborted) return;
    setConn(false, "node unreachable, retrying");
    setTimeout(connect, 2000);
    return;
  }
  if (resp.status === 401) {
    setConn(false, "login needed");
    showLogin(sessionStorage.getItem(KEY) ? "wrong password" : "");
    return;
  }
  if (!resp.ok) {
    setConn(false, "HTTP " + resp.status + ", retrying");
    setTimeout(connect, 3000);
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = !sessionStorage.getItem(KEY);
  setConn(true, "live");
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        handleBlock(block);
      }
    }
  } catch (err) {
    if (abort.signal.aborted) return;
  }
  if (abort.signal.aborted) return;
  setConn(false, "stream ended, reconnecting");
  setTimeout(connect, 2000);
}

function handleBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;  // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event === "state" && data.length) update(JSON.parse(data.join("\n")));
}

// -- state -----------------------------------------------------------------------------------

function update(msg) {
  state.members = msg.members;
  state.leader = msg.leader;
  state.self = msg.self;
  state.now = msg.now;
  for (const [id, pts] of Object.entries(msg.points)) {
    const list = state.points[id] || (state.points[id] = []);
    for (const p of pts) list.push(p);
    while (list.length && list[0].t < msg.now - WINDOW_MS - 5000) list.shift();
  }
  for (const e of msg.events) state.events.push(e);
  state.events.sort((a, b) => a.t - b.t);
  if (state.events.length > 500) state.events.splice(0, state.events.length - 500);
  render();
}

function render() {
  $("served").textContent = "served by node " + state.self;
  $("leader-badge").textContent = "leader: " + (state.leader == null ? "none" : "node " +
                                                state.leader);
  renderMembers();
  renderCharts();
  renderTimeline();
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}

function ago(ms) {
  if (ms == null) return "never";
  const s = Math.max(0, (state.now - ms) / 1000);
  return s < 1.5 ? "now" : s.toFixed(0) + " s ago";
}

function renderMembers() {
  const body = $("members").querySelector("tbody");
  body.replaceChildren();
  for (const m of state.members) {
    const tr = document.createElement("tr");
    tr.dataset.node = m.id;
    tr.className = m.up ? "" : "down";
    tr.append(cell(m.id + (m.id === state.self ? " (this)" : "")));
    const health = cell(m.health, "health " + m.health.replace(" ", "-"));
    if (m.error) health.title = m.error;
    tr.append(health);
    tr.append(cell(m.role, m.role === "leader" ? "role-leader" : ""));
    tr.append(cell(m.member));
    tr.append(cell(m.term, "num"), cell(m.leader, "num"), cell(m.commit_index, "num"),
              cell(m.applied_index, "num"), cell(m.lag, "num"), cell(m.clients, "num"),
              cell(ago(m.last_contact)));
    const actions = document.createElement("td");
    const button = (label, fn) => {
      const b = document.createElement("button");
      b.textContent = label;
      b.dataset.action = label;
      b.addEventListener("click", fn);
      actions.append(b, " ");
    };
    const voters = votersNow();
    if (m.up && m.member === "voter" && m.role !== "leader" && state.leader != null) {
      button("make leader", () => confirmThen(
        `Transfer leadership from node ${state.leader} to node ${m.id}?`,
        () => post("/transfer-leader", { to: m.id })));
    }
    if (m.member === "learner") {
      button("promote", () => confirmThen(
        `Promote learner ${m.id} to voter (voters become ${[...voters, m.id].join(", ")})?`,
        () => post("/change-membership", { voters: [...voters, m.id] })));
      const others = learnersNow().filter((l) => l !== m.id);
      button("remove", () => confirmThen(
        `Remove learner ${m.id} (voters stay ${voters.join(", ")})?`,
        () => post("/change-membership", { voters, learners: others })));
    }
    if (m.member === "voter" && voters.length > 1) {
      const rest = voters.filter((v) => v !== m.id);
      button("remove", () => confirmThen(
        `Remove node ${m.id} from the voters (voters become ${rest.join(", ")})?`,
        () => post("/change-membership", { voters: rest })));
    }
    if (m.up) {
      button("snapshot", () => confirmThen(`Take a snapshot on node ${m.id} now?`,
                                           () => post("/snapshot", { node: m.id })));
    }
    tr.append(actions);
    body.append(tr);
  }
}

function votersNow() {
  return state.members.filter((m) => m.member === "voter").map((m) => m.id);
}

function learnersNow() {
  return state.members.filter((m) => m.member === "learner").map((m) => m.id);
}

// -- actions ---------------------------------------------------------------------------------

function confirmThen(text, action) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.onclose = () => { if (dialog.returnValue === "ok") action(); };
  dialog.returnValue = "";
  dialog.showModal();
}

async function post(path, body) {
  const out = $("action-result");
  out.textContent = path + ": working…";
  try {
    const resp = await fetch(path, {
      method: "POST", body: JSON.stringify(body),
      headers: { "content-type": "application/json", ...authHeaders() },
    });
    const answer = await resp.json().catch(() => ({}));
    if (resp.status === 401) { showLogin("log in first"); return; }
    out.textContent = resp.ok ? `${path}: done ${JSON.stringify(answer)}`
                              : `${path}: failed (${resp.status}) ${answer.error || ""}`;
    out.className = resp.ok ? "muted" : "error";
  } catch (err) {
    out.textContent = `${path}: ${err}`;
    out.className = "error";
  }
}

// -- charts ----------------------------------------------------------------------------------

function nodeSeries(field, scale = 1) {
  return Object.keys(state.points).sort((a, b) => a - b).map((id, i) => ({
    label: "node " + id, color: COLORS[i % COLORS.length],
    points: state.points[id].filter((p) => p[field] != null).map((p) => [p.t, p[field] * scale]),
  }));
}

function clusterSeries(field, label, color) {
  const sums = new Map();  // per second, summed over the nodes
  // Nodes sample at different moments: the newest second is summed only once every node
  // that is still reporting has a point for it (else the line would dip at its end).
  const fresh = Object.values(state.points).filter((pts) => pts.length &&
                                                   pts[pts.length - 1].t > state.now - 5000);
  const upTo = Math.min(...fresh.map((pts) => pts[pts.length - 1].t));
  for (const pts of Object.values(state.points)) {
    for (const p of pts) {
      if (p.t > upTo + 500) continue;
      const s = Math.round(p.t / 1000) * 1000;
      sums.set(s, (sums.get(s) || 0) + (p[field] || 0));
    }
  }
  const points = [...sums.entries()].sort((a, b) => a[0] - b[0]);
  return { label, color, points };
}

function renderCharts() {
  const latency = [];
  Object.keys(state.points).sort((a, b) => a - b).forEach((id, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = state.points[id];
    latency.push({ label: `node ${id} p99`, color,
                   points: pts.filter((p) => p.p99 != null).map((p) => [p.t, p.p99]) });
    latency.push({ label: `node ${id} p50`, color, dash: [4, 3],
                   points: pts.filter((p) => p.p50 != null).map((p) => [p.t, p.p50]) });
  });
  const charts = {
    ops: [clusterSeries("writes", "writes/s", COLORS[1]),
          clusterSeries("reads", "reads/s", COLORS[0])],
    latency,
    log: nodeSeries("log"),
    snapshot: nodeSeries("snapshot_index"),
    memory: nodeSeries("rss", 1 / (1024 * 1024)),
    clients: nodeSeries("clients"),
  };
  state.charts = charts;
  for (const [name, series] of Object.entries(charts)) {
    drawChart($("chart-" + name), series);
  }
}

function setupCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (v >= 100) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1).replace(/\.0$/, "");
  return v.toPrecision(2);
}

function drawChart(canvas, series) {
  const { ctx, w, h } = setupCanvas(canvas);
  const left = 44, right = 8, top = 18, bottom = 18;
  const t1 = state.now, t0 = t1 - WINDOW_MS;
  let max = 0;
  for (const s of series) for (const [t, v] of s.points) if (t >= t0 && v > max) max = v;
  max = niceMax(max * 1.05);
  const x = (t) => left + ((t - t0) / WINDOW_MS) * (w - left - right);
  const y = (v) => top + (1 - v / max) * (h - top - bottom);
  ctx.font = "11px system-ui, 'DejaVu Sans', sans-serif";
  ctx.strokeStyle = "#e3e6eb";
  ctx.fillStyle = "#6b7482";
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y(v) + 0.5);
    ctx.lineTo(w - right, y(v) + 0.5);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(fmt(v), left - 4, y(v));
  }
  ctx.textAlign = "center";
  for (let m = 0; m <= 5; m++) {
    const t = t1 - m * 60000;
    ctx.fillText(m === 0 ? "now" : `-${m}m`, Math.min(x(t), w - right - 10), h - 7);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let started = false, lastT = null;
    for (const [t, v] of s.points) {
      if (t < t0) continue;
      // a gap of more than a few seconds (node down) breaks the line
      if (!started || t - lastT > 5000) ctx.moveTo(x(t), y(v));
      else ctx.lineTo(x(t), y(v));
      started = true;
      lastT = t;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  let lx = left + 4;  // the legend, along the top
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const s of series) {
    if (s.dash) continue;
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    const text = s.label + (last == null ? "" : " " + fmt(last));
    ctx.fillStyle = s.color;
    ctx.fillRect(lx, 5, 10, 3);
    ctx.fillStyle = "#1d2430";
    ctx.fillText(text, lx + 13, 7);
    lx += ctx.measureText(text).width + 26;
  }
}

// -- timeline --------------------------------------------------------------------------------

function renderTimeline() {
  const { ctx, w, h } = setupCanvas($("timeline-strip"));
  const t1 = state.now, t0 = t1 - WINDOW_MS;
  const x = (t) => 8 + ((t - t0) / WINDOW_MS) * (w - 16);
  ctx.strokeStyle = "#c9ced6";
  ctx.beginPath();
  ctx.moveTo(8, h / 2);
  ctx.lineTo(w - 8, h / 2);
  ctx.stroke();
  for (const e of state.events) {
    if (e.t < t0) continue;
    ctx.fillStyle = KIND_COLORS[e.kind] || "#6b7482";
    ctx.beginPath();
    ctx.arc(x(e.t), h / 2, 5, 0, 2 * Math.PI);
    ctx.fill();
  }
  const list = $("timeline");
  list.replaceChildren();
  for (const e of [...state.events].reverse().slice(0, 100)) {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    const time = document.createElement("time");
    time.textContent = new Date(e.t).toLocaleTimeString();
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.style.color = KIND_COLORS[e.kind] || "";
    kind.textContent = e.kind;
    li.append(time, kind, document.createTextNode(e.text));
    list.append(li);
  }
}

// -- start -----------------------------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("password").value);
  connect();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  if (streamAbort) streamAbort.abort();
  showLogin("");
});
$("add-learner").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = Number($("learner-id").value), address = $("learner-addr").value.trim();
  confirmThen(`Add node ${id} at ${address} as a learner?`,
              () => post("/add-learner", { id, address }));
});
window.addEventListener("resize", () => { if (state.now) render(); });
connect();

// The Custos console. Plain JavaScript, no build step. Everything it shows comes from the
// node's JSON routes, which call the same services as the CLI with the session's token;
// footage plays through hls.js from the node's verified segments, never as a download.
"use strict";

const state = { session: null, view: null, players: [], reviewExport: null, lastReview: null };

// ---- small helpers ------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v); // CSSOM: the page's CSP forbids style attributes
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
}
const pad = (n, w = 2) => String(n).padStart(w, "0");
function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function notice(msg) {
  const n = $("notice");
  n.textContent = msg;
  n.hidden = !msg;
}

async function api(path, opts = {}) {
  const headers = { "content-type": "application/json" };
  if (state.session) headers["x-csrf-token"] = state.session.csrf;
  if (opts.background) headers["x-custos-background"] = "1";
  const r = await fetch(path, {
    method: opts.method || (opts.body ? "POST" : "GET"),
    headers,
    body: opts.body ? JSON.stringify(opts.body) : undefined,
    credentials: "same-origin",
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (r.status === 401 && state.session && path !== "/api/sign-in") {
    signedOut((data && data.error) || "Your session ended; sign in again.");
    throw new Error((data && data.error) || "not signed in");
  }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

function table(cols, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el("table", {},
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c[0])))),
    el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, c[1](r)))))));
}

// ---- sessions and navigation ------------------------------------------------------------
const TABS = {
  approver: [["inbox", "Inbox"], ["report", "Compliance"]],
  security: [["review", "Review"], ["exports", "Exports"], ["operations", "Operations"]],
  operator: [["review", "Review"], ["operations", "Operations"]],
  auditor: [["audit", "Audit log"], ["report", "Compliance"]],
  admin: [["admin", "Administration"], ["operations", "Operations"], ["report", "Compliance"]],
  investigator: [["exports", "Exports"]],
};

function signedIn(s) {
  state.session = s;
  $("who").textContent = `${s.user} (${s.role})`;
  $("sign-out").hidden = false;
  const tabs = $("tabs");
  tabs.replaceChildren();
  for (const [v, label] of TABS[s.role] || []) {
    tabs.append(el("button", { type: "button", "data-view": v, onclick: () => show(v) }, label));
  }
  show((TABS[s.role] || [["sign-in"]])[0][0]);
}

function signedOut(msg) {
  stopPlayers();
  state.session = null;
  $("who").textContent = "";
  $("sign-out").hidden = true;
  $("tabs").replaceChildren();
  show("sign-in");
  notice(msg || "");
}

function show(view) {
  stopPlayers();
  state.view = view;
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  for (const b of document.querySelectorAll("#tabs button")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  const load = LOADERS[view];
  if (load) load().catch((e) => notice(e.message));
}

// ---- the synchronised player ------------------------------------------------------------
// Each tile plays one track through its own hls.js; a shared clock in wall time drives
// them all. A tile maps wall time to its media time through its playlist's program date
// times, so cameras whose recordings start, stop or drift differently stay in step.
class Tile {
  constructor(track, label) {
    this.track = track;
    this.frags = [];
    this.video = el("video", { muted: true, playsinline: true, preload: "auto", "aria-label": `camera ${track.camera}` });
    this.video.muted = true;
    this.gap = el("div", { class: "gap", hidden: true }, "no recording at this time");
    this.root = el("div", { class: "tile" }, this.video, el("span", { class: "label" }, label), this.gap);
    if (!window.Hls || !Hls.isSupported()) {
      this.fail("This browser cannot play the footage (no Media Source Extensions).");
      return;
    }
    const csrf = state.session.csrf;
    this.hls = new Hls({
      xhrSetup: (xhr) => xhr.setRequestHeader("x-csrf-token", csrf),
      maxBufferLength: 20,
      backBufferLength: 30,
    });
    this.ready = new Promise((resolve) => {
      this.hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
        this.frags = data.details.fragments.map((f) => ({ start: f.start, dur: f.duration, pdt: f.programDateTime, file: f.relurl }));
        resolve();
      });
    });
    this.hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      // What the browser cannot parse or decode (H.265: hls.js's light build does not
      // parse it, and Chromium decodes it only in hardware) is shown as stills; a
      // refused or failed request is said as it is.
      if (data.type !== Hls.ErrorTypes.NETWORK_ERROR) this.toStills();
      else this.fail(`Playback of camera ${track.camera} stopped: ${data.details}${data.response && data.response.code ? ` (HTTP ${data.response.code})` : ""}`);
    });
    this.hls.loadSource(track.playlist);
    this.hls.attachMedia(this.video);
  }
  // The browser cannot decode this camera's codec (H.265 in most browsers): show the
  // first picture of the segment at the shared clock's time instead, made by the node.
  toStills() {
    if (this.stills) return;
    this.stills = true;
    if (this.hls) this.hls.destroy();
    this.hls = null;
    this.video.hidden = true;
    this.img = el("img", { class: "still", alt: `camera ${this.track.camera}: first picture of the segment` });
    this.caption = el("span", { class: "caption" },
      `This browser cannot decode camera ${this.track.camera}'s video (H.265?): showing the first picture of each segment.`);
    this.root.insertBefore(this.img, this.gap);
    this.root.append(this.caption);
  }
  stillAt(wall) {
    const f = this.frags.find((x) => wall >= x.pdt && wall < x.pdt + x.dur * 1000);
    this.gap.hidden = !!f;
    if (!f || f.file === this.shown) return;
    this.shown = f.file;
    const url = this.track.playlist.replace(/index\.m3u8$/, f.file.replace(/\.ts$/, ".jpg"));
    fetch(url, { headers: { "x-csrf-token": state.session.csrf }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((b) => {
        if (this.img.src) URL.revokeObjectURL(this.img.src);
        this.img.src = URL.createObjectURL(b);
      })
      .catch((e) => { this.caption.textContent = `No still of this segment: ${e.message}`; });
  }
  fail(msg) {
    this.failed = msg;
    this.gap.textContent = msg;
    this.gap.hidden = false;
  }
  // Wall-clock ms shown now, or null.
  wallNow() {
    const t = this.video.currentTime;
    for (const f of this.frags) if (t >= f.start && t < f.start + f.dur + 0.05) return f.pdt + (t - f.start) * 1000;
    return null;
  }
  // Media time for wall-clock ms, or null in a gap.
  mediaFor(wall) {
    for (const f of this.frags) if (wall >= f.pdt && wall < f.pdt + f.dur * 1000) return f.start + (wall - f.pdt) / 1000;
    return null;
  }
  frames() {
    const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    return q ? q.totalVideoFrames : 0;
  }
  destroy() {
    if (this.hls) this.hls.destroy();
    this.video.removeAttribute("src");
  }
}

class Player {
  constructor(container, review) {
    this.review = review;
    this.from = Math.min(...review.tracks.map((t) => t.from_ms));
    this.to = Math.max(...review.tracks.map((t) => t.to_ms));
    this.tiles = review.tracks.map((t) => new Tile(t, t.camera));
    this.playing = false;
    this.wall = this.firstRecorded();
    this.base = null;
    const grid = el("div", { class: `grid${this.tiles.length > 1 ? " multi" : ""}` }, this.tiles.map((t) => t.root));
    this.playBtn = el("button", { type: "button", class: "primary", onclick: () => this.toggle() }, "Play");
    this.clock = el("span", { class: "clock", "aria-live": "off" }, fmtTime(this.wall));
    this.seek = el("input", {
      type: "range", min: this.from, max: this.to, step: 1000, value: this.wall, "aria-label": "Position in the reviewed window",
      oninput: (e) => this.seekTo(Number(e.target.value)),
    });
    this.timelines = el("div", { class: "timelines" }, review.tracks.map((t) => this.timeline(t)));
    this.root = el("div", { class: "player" }, grid,
      el("div", { class: "controls" }, this.playBtn, this.clock, this.seek), this.timelines);
    container.replaceChildren(this.root);
    this.timer = setInterval(() => this.tick(), 200);
    Promise.all(this.tiles.map((t) => t.ready)).then(() => this.seekTo(this.wall));
    window.custos = { player: this };
  }
  firstRecorded() {
    const starts = this.review.tracks.flatMap((t) => t.spans.map((s) => s[0])).filter((s) => s >= this.from);
    return starts.length ? Math.min(...starts) : this.from;
  }
  pos(ms) { return `${(100 * (ms - this.from)) / Math.max(1, this.to - this.from)}%`; }
  timeline(t) {
    const bar = el("div", { class: "timeline", title: `camera ${t.camera}: recorded spans in green, lost in red, legal holds outlined` });
    const place = (a, b) => {
      const lo = Math.max(a, this.from), hi = Math.min(b, this.to);
      return { left: this.pos(lo), width: this.pos(this.from + Math.max(0, hi - lo)) };
    };
    for (const [a, b] of t.spans) bar.append(el("div", { class: "span", style: place(a, b) }));
    for (const l of t.lost) bar.append(el("div", { class: "lost", style: place(l.start_ms, l.end_ms), title: l.reason }));
    for (const h of t.holds) {
      bar.append(el("div", { class: "hold", style: place(h.from_ms, h.to_ms || this.to), title: `hold ${h.id} (case ${h.case_id})` }));
    }
    const head = el("div", { class: "head" });
    bar.append(head);
    t._head = head;
    bar.addEventListener("click", (e) => {
      const r = bar.getBoundingClientRect();
      this.seekTo(this.from + ((e.clientX - r.left) / r.width) * (this.to - this.from));
    });
    return el("div", { class: "tl-row" }, el("span", {}, t.camera), bar);
  }
  now() { return this.playing && this.base ? this.base.wall + (performance.now() - this.base.perf) : this.wall; }
  toggle() { this.playing ? this.pause() : this.play(); }
  play() {
    this.playing = true;
    this.base = { wall: this.wall, perf: performance.now() };
    this.playBtn.textContent = "Pause";
    this.tick();
  }
  pause() {
    this.wall = this.now();
    this.playing = false;
    this.base = null;
    this.playBtn.textContent = "Play";
    for (const t of this.tiles) t.video.pause();
  }
  seekTo(wall) {
    this.wall = Math.max(this.from, Math.min(this.to, wall));
    if (this.playing) this.base = { wall: this.wall, perf: performance.now() };
    for (const t of this.tiles) {
      const m = t.mediaFor(this.wall);
      if (m !== null) t.video.currentTime = m;
    }
    this.tick();
  }
  tick() {
    let w = this.now();
    if (w >= this.to) { w = this.to; this.pause(); }
    // Hold the shared clock while a tile that has footage now is still loading it.
    const waiting = this.playing && this.tiles.some((t) => !t.failed && !t.stills && t.mediaFor(w) !== null && t.video.readyState < 3);
    if (waiting) { this.base = { wall: w, perf: performance.now() }; }
    this.wall = w;
    for (const t of this.tiles) {
      if (t.failed) continue;
      if (t.stills) { t.stillAt(w); continue; }
      const m = t.mediaFor(w);
      t.gap.hidden = m !== null;
      if (m === null) { t.video.pause(); continue; }
      const drift = t.video.currentTime - m;
      if (Math.abs(drift) > 0.6) t.video.currentTime = m;
      else t.video.playbackRate = this.playing ? Math.max(0.8, Math.min(1.2, 1 - drift)) : 1;
      if (this.playing && !waiting && t.video.paused) t.video.play().catch(() => {});
      if (!this.playing && !t.video.paused) t.video.pause();
    }
    this.clock.textContent = fmtTime(w);
    if (document.activeElement !== this.seek) this.seek.value = w;
    for (const t of this.review.tracks) if (t._head) t._head.style.left = this.pos(w);
  }
  destroy() {
    clearInterval(this.timer);
    for (const t of this.tiles) t.destroy();
    if (window.custos && window.custos.player === this) window.custos = null;
  }
}

function stopPlayers() {
  for (const p of state.players) p.destroy();
  state.players = [];
}

// ---- views ------------------------------------------------------------------------------
const LOADERS = {
  async inbox() {
    $("inbox-review").hidden = true;
    const [ex, holds, changes] = await Promise.all([api("/api/exports"), api("/api/holds"), api("/api/changes")]);
    const pending = (ex.exports || []).filter((e) => e.status === "requested");
    $("inbox-exports").replaceChildren(table([
      ["Export", (e) => e.id], ["Case", (e) => e.case_id], ["Organisation", (e) => e.organisation],
      ["Letter", (e) => e.letter], ["Purpose", (e) => e.purpose], ["Requested by", (e) => e.requester],
      ["Footage", (e) => (e.ranges || []).map((r) => `${r.camera} ${fmtTime(r.from_ms)} – ${fmtTime(r.to_ms)}`).join("; ")],
      ["", (e) => e.requester === state.session.user
        ? el("span", { class: "empty" }, "your own request")
        : el("button", { type: "button", class: "primary", "data-export": e.id, onclick: () => reviewExport(e) }, "Review and decide")],
    ], pending, "No export request waits for a decision."));
    const releasing = (holds.holds || []).filter((h) => !h.released_ms && (h.release_approved_by || []).length);
    $("inbox-holds").replaceChildren(table([
      ["Hold", (h) => h.id], ["Case", (h) => h.case_id], ["Cameras", (h) => (h.cameras || []).join(", ")],
      ["Reason", (h) => h.reason], ["Release approved by", (h) => (h.release_approved_by || []).join(", ")],
      ["", (h) => el("button", { type: "button", onclick: async () => {
        try { await api(`/api/holds/${h.id}/approve-release`, { body: {} }); notice(`Hold ${h.id}: release approved.`); LOADERS.inbox(); } catch (e) { notice(e.message); }
      } }, "Approve release")],
    ], releasing, "No legal hold waits for a second release approval."));
    $("inbox-changes").replaceChildren(changeTable(changes.changes || [], true));
  },
  async review() {
    const cams = await api("/api/cameras");
    const box = $("review-cameras");
    box.replaceChildren(...(cams.cameras || []).map((c) => el("label", {},
      el("input", { type: "checkbox", value: c.id, name: "camera" }), `${c.id}${c.name ? ` (${c.name})` : ""}${c.sensitive ? " — sensitive" : ""}`)));
    const now = Date.now();
    if (!$("review-from").value) $("review-from").value = toLocalInput(now - 15 * 60 * 1000);
    if (!$("review-to").value) $("review-to").value = toLocalInput(now);
    $("review-after").hidden = !state.lastReview || state.session.role !== "security";
    $("review-player").replaceChildren();
  },
  async operations() {
    const canRecord = ["operator", "security"].includes(state.session.role);
    $("patrol-form").hidden = !canRecord;
    $("handover-form").hidden = !canRecord;
    const [alarms, status, nodes, duty] = await Promise.all([
      api("/api/alarms"), api("/api/status"), api("/api/nodes").catch(() => ({ nodes: [] })), api("/api/duty").catch(() => ({ records: [] })),
    ]);
    const gib = (b) => (b / 2 ** 30).toFixed(1);
    $("ops-nodes").replaceChildren(table([
      ["Node", (n) => n.id], ["Campus", (n) => n.campus], ["Role", (n) => n.raft_role], ["Health", (n) => n.health],
      ["Disk free", (n) => `${gib(n.disk_free_bytes)} of ${gib(n.disk_total_bytes)} GiB${n.disk_low ? " — BELOW FLOOR" : ""}`],
      ["Cameras", (n) => n.cameras],
    ], nodes.nodes || [], "No nodes."));
    $("ops-duty").replaceChildren(table([
      ["#", (d) => d.seq], ["Kind", (d) => d.kind], ["By", (d) => d.user], ["When", (d) => fmtTime(d.time_ms)],
      ["To", (d) => d.to ? `${d.to}${d.accepted_by ? " (accepted)" : " (pending)"}` : ""], ["Notes", (d) => d.notes],
      ["Findings", (d) => (d.findings || []).join("; ")],
    ], duty.records || [], "No duty records yet."));
    $("ops-alarms").replaceChildren(table([
      ["Alarm", (a) => a.id], ["Kind", (a) => a.kind], ["Subject", (a) => a.subject], ["Detail", (a) => a.detail],
      ["Raised", (a) => fmtTime(a.raised_ms)],
      ["", (a) => state.session.role === "auditor" ? "" : el("button", { type: "button", onclick: async () => {
        const note = prompt(`Acknowledge alarm ${a.id}: what was done?`);
        if (!note) return;
        try { await api(`/api/alarms/${a.id}/ack`, { body: { approve: true, note } }); LOADERS.operations(); } catch (e) { notice(e.message); }
      } }, "Acknowledge")],
    ], (alarms.alarms || []).filter((a) => !a.cleared_ms), "No open alarm."));
    $("ops-status").replaceChildren(el("dl", { class: "facts" },
      el("dt", {}, "Node"), el("dd", {}, `${status.node_id} (${status.raft_role}, term ${status.raft_term})`),
      el("dt", {}, "Segments"), el("dd", {}, status.segments),
      el("dt", {}, "Cameras"), el("dd", {}, (status.cameras || []).map((c) => `${c.id}: ${c.state}`).join(", ") || "none"),
      el("dt", {}, "Under-replicated"), el("dd", {}, status.under_replicated),
      el("dt", {}, "Shift"), el("dd", {}, status.current_shift || "—"),
      el("dt", {}, "Open faults"), el("dd", {}, (status.open_faults || []).join("; ") || "none")));
  },
  async audit() { await loadAudit(); },
  async report() {
    const r = await api("/api/report");
    state.report = r;
    $("report-summary").textContent = `${(r.cameras || []).length} cameras over ${r.days} days; ${r.breaking_floor} below their retention floor; `
      + `${r.shifts_short} shifts short of patrols; ${r.faults_overdue} faults open too long. Generated ${fmtTime(r.generated_ms)}.`;
    const dur = (ms) => `${(ms / 3600000).toFixed(1)} h`;
    $("report-cameras").replaceChildren(table([
      ["Camera", (c) => c.camera], ["Coverage", (c) => `${(100 * c.coverage).toFixed(2)} %`], ["Gaps", (c) => (c.gaps || []).length],
      ["Oldest kept", (c) => fmtTime(c.oldest_ms)], ["Floor", (c) => `${c.min_days} d: ${c.meets_floor ? "met" : "BROKEN"}`],
      ["Holds", (c) => (c.holds || []).join(", ")], ["Deleted", (c) => c.deleted_segments],
      ["Accesses", (c) => `${c.accesses_allowed} allowed, ${c.accesses_denied} denied`],
    ], r.cameras || [], "No cameras."));
    $("report-shifts").replaceChildren(table([
      ["Shift", (s) => `${s.shift} ${s.day}`], ["Patrols", (s) => `${s.patrols} of ${s.required}`], ["", (s) => (s.short ? "SHORT" : "")],
    ], r.shifts || [], "No shift ended in the window."));
    $("report-faults").replaceChildren(table([
      ["Fault", (f) => f.fault.id], ["Subject", (f) => f.fault.camera || `node ${f.fault.node}`], ["Note", (f) => f.fault.note],
      ["Time to repair", (f) => `${dur(f.repair_ms)}${f.fault.resolved_ms ? "" : " (open)"}${f.overdue ? " — OVERDUE" : ""}`],
    ], r.faults || [], "No faults in the window."));
  },
  async admin() {
    const [users, cams, changes, pol] = await Promise.all([api("/api/users"), api("/api/cameras"), api("/api/changes"), api("/api/policies")]);
    const policies = [{ camera: "(default)", ...(pol.default_policy || {}) }, ...(pol.cameras || [])];
    $("admin-policies").replaceChildren(table([
      ["Camera", (p) => p.camera], ["Kept at least", (p) => `${p.min_days} days`], ["Deleted after", (p) => `${p.max_days} days`],
    ], policies, "No policies."));
    $("admin-users").replaceChildren(table([
      ["Name", (u) => u.name], ["Role", (u) => u.role], ["Case", (u) => u.case_id], ["State", (u) => (u.disabled ? "disabled" : "active")],
      ["Grants", (u) => (u.grants || []).join(", ")],
    ], users.users || [], "No users."));
    $("admin-cameras").replaceChildren(table([
      ["Camera", (c) => c.id], ["Name", (c) => c.name], ["Sensitive", (c) => (c.sensitive ? "yes" : "no")], ["Recorder", (c) => c.recorder],
    ], cams.cameras || [], "No cameras."));
    $("admin-changes").replaceChildren(changeTable(changes.changes || [], false));
  },
  async exports() {
    const ex = await api("/api/exports");
    $("exports-list").replaceChildren(table([
      ["Export", (e) => e.id], ["Case", (e) => e.case_id], ["Status", (e) => e.status], ["Requested by", (e) => e.requester],
      ["Decided by", (e) => e.decided_by || "—"], ["Purpose", (e) => e.purpose],
    ], ex.exports || [], "No exports."));
  },
};

function changeTable(changes, decide) {
  return table([
    ["Change", (c) => c.id], ["Asked by", (c) => c.requested_by], ["What", (c) => `${c.action}: ${c.detail}`],
    ["Why it waits", (c) => c.why], ["Lapses", (c) => fmtTime(c.expires_ms)],
    ["", (c) => !decide || c.requested_by === state.session.user ? "" : el("span", { class: "actions" },
      el("button", { type: "button", class: "primary", onclick: () => decideChange(c, true) }, "Accept"),
      el("button", { type: "button", class: "danger", onclick: () => decideChange(c, false) }, "Reject"))],
  ], changes, "No change waits for a decision.");
}

async function decideChange(c, approve) {
  const note = approve ? "" : prompt(`Reject change ${c.id}: why?`);
  if (!approve && !note) return;
  try {
    const r = await api(`/api/changes/${c.id}/decide`, { body: { approve, note: note || "" } });
    if (r.token && r.token.token) {
      alert(`Change ${c.id} accepted. Give ${r.token.user} this token, once, by a safe way; it is also their enrolment code for this console:\n\n${r.token.token}`);
    }
    notice(`Change ${c.id} ${approve ? "accepted" : "rejected"}.`);
    LOADERS.inbox();
  } catch (e) { notice(e.message); }
}

async function reviewExport(e) {
  stopPlayers();
  state.reviewExport = e;
  $("inbox-review").hidden = false;
  $("inbox-review-title").textContent = `Export ${e.id} for ${e.organisation}`;
  $("decision-error").textContent = "";
  $("decision-note").value = "";
  const f = $("inbox-review-facts");
  f.replaceChildren();
  const facts = [["Case", e.case_id], ["Letter", e.letter], ["Purpose", e.purpose], ["Requested by", e.requester], ["Requested", fmtTime(e.requested_ms)]];
  if (e.redacted) facts.push(["Redaction", `privacy zones${(e.redact_boxes || []).length ? ` and boxes ${e.redact_boxes.join("; ")}` : ""}`]);
  for (const [k, v] of facts) {
    f.append(el("dt", {}, k), el("dd", {}, v));
  }
  $("include-original-row").hidden = !e.redacted;
  $("include-original").checked = false;
  try {
    const review = await api(`/api/exports/${e.id}/review`, { body: {} });
    const p = new Player($("inbox-player"), review);
    state.players.push(p);
  } catch (err) {
    $("decision-error").textContent = `The footage cannot be shown: ${err.message}`;
  }
}

async function decideExport(approve) {
  const e = state.reviewExport;
  if (!e) return;
  const note = $("decision-note").value.trim();
  if (!approve && note.length < 4) { $("decision-error").textContent = "Say why you reject it (the requester and the audit log read it)."; return; }
  try {
    const include_original = !!e.redacted && $("include-original").checked;
    const r = await api(`/api/exports/${e.id}/decide`, { body: { approve, note, include_original } });
    stopPlayers();
    notice(`Export ${r.id} ${r.status} by ${r.decided_by}.`);
    state.reviewExport = null;
    LOADERS.inbox();
  } catch (err) { $("decision-error").textContent = err.message; }
}

async function loadAudit() {
  const q = new URLSearchParams({ user: $("audit-user").value, camera: $("audit-camera").value, action: $("audit-action").value, limit: "500" });
  const r = await api(`/api/audit?${q}`);
  state.auditRows = r.entries || [];
  $("audit-entries").replaceChildren(table([
    ["#", (x) => x.seq], ["Time", (x) => fmtTime(x.time_ms)], ["User", (x) => `${x.user} (${x.role})`], ["Action", (x) => x.action],
    ["Outcome", (x) => x.outcome], ["Purpose", (x) => x.purpose], ["Cameras", (x) => (x.cameras || []).join(", ")],
    ["Client", (x) => x.client], ["Detail", (x) => x.detail || x.reason],
  ], state.auditRows, "No entries match."));
}

// Saves text the page already holds (the audit log or the report) as a file.
function download(text, name) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function csv(rows) {
  const cols = ["seq", "time_ms", "user", "role", "action", "outcome", "purpose", "cameras", "from_ms", "to_ms", "client", "detail", "reason", "hash"];
  const q = (v) => `"${String(Array.isArray(v) ? v.join(" ") : v ?? "").replaceAll('"', '""')}"`;
  return [cols.join(","), ...rows.map((r) => cols.map((c) => q(r[c])).join(","))].join("\n");
}

async function startReview(ev) {
  ev.preventDefault();
  stopPlayers();
  $("review-error").textContent = "";
  const cameras = [...document.querySelectorAll("#review-cameras input:checked")].map((i) => i.value);
  const body = {
    cameras,
    from_ms: new Date($("review-from").value).getTime(),
    to_ms: new Date($("review-to").value).getTime(),
    purpose: $("review-purpose").value,
  };
  if (!cameras.length) { $("review-error").textContent = "Choose at least one camera."; return; }
  try {
    const review = await api("/api/review", { body });
    state.lastReview = body;
    const p = new Player($("review-player"), review);
    state.players.push(p);
    $("review-after").hidden = state.session.role !== "security" && state.session.role !== "operator";
    $("keep-export").hidden = state.session.role !== "security";
  } catch (e) { $("review-error").textContent = e.message; }
}

async function requestExport() {
  const r = state.lastReview;
  if (!r) return;
  try {
    const e = await api("/api/exports", { body: {
      case_id: $("keep-case").value, organisation: $("export-org").value, letter: $("export-letter").value,
      purpose: $("export-purpose").value, ranges: r.cameras.map((camera) => ({ camera, from_ms: r.from_ms, to_ms: r.to_ms })),
    } });
    $("keep-result").textContent = `Export ${e.id} requested; an approver reviews the footage and decides.`;
  } catch (err) { $("keep-result").textContent = err.message; }
}

async function placeHold() {
  const r = state.lastReview;
  if (!r) return;
  try {
    const h = await api("/api/holds", { body: { case_id: $("keep-case").value, cameras: r.cameras, from_ms: r.from_ms, to_ms: r.to_ms, reason: $("keep-reason").value } });
    $("keep-result").textContent = `Hold ${h.id} placed on ${r.cameras.join(", ")} from ${fmtTime(r.from_ms)} to ${fmtTime(r.to_ms)}.`;
  } catch (e) { $("keep-result").textContent = e.message; }
}

// ---- start ------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      const s = await api("/api/sign-in", { body: { name: $("sign-in-name").value, password: $("sign-in-password").value } });
      $("sign-in-password").value = "";
      notice("");
      signedIn(s);
    } catch (e) { $("sign-in-error").textContent = e.message; }
  });
  $("enrol-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("enrol-error").textContent = "";
    try {
      await api("/api/enrol", { body: { name: $("enrol-name").value, code: $("enrol-code").value, password: $("enrol-password").value } });
      $("enrol-code").value = "";
      $("enrol-password").value = "";
      $("sign-in-name").value = $("enrol-name").value;
      notice("Your password is set. Sign in with it.");
    } catch (e) { $("enrol-error").textContent = e.message; }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await api("/api/sign-out", { body: {} }); } catch (_) { /* already gone */ }
    signedOut("Signed out.");
  });
  $("approve-export").addEventListener("click", () => decideExport(true));
  $("reject-export").addEventListener("click", () => decideExport(false));
  $("close-review").addEventListener("click", () => { stopPlayers(); $("inbox-review").hidden = true; });
  $("review-form").addEventListener("submit", startReview);
  $("keep-hold").addEventListener("click", placeHold);
  $("keep-request-export").addEventListener("click", requestExport);
  $("patrol-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const d = await api("/api/patrol", { body: { notes: $("patrol-notes").value } });
      $("ops-result").textContent = `Patrol ${d.seq} recorded: ${d.problems} problem(s) found.`;
      $("patrol-notes").value = "";
      LOADERS.operations();
    } catch (e) { $("ops-result").textContent = e.message; }
  });
  $("handover-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const d = await api("/api/handover", { body: { to: $("handover-to").value, notes: $("handover-notes").value } });
      $("ops-result").textContent = `Handover ${d.seq} to ${d.to} recorded; it waits for ${d.to} to accept it.`;
      LOADERS.operations();
    } catch (e) { $("ops-result").textContent = e.message; }
  });
  $("audit-verify").addEventListener("click", async () => {
    try {
      const v = await api("/api/audit/verify");
      $("audit-verified").textContent = v.intact
        ? `Intact: ${v.entries} entries, each linked to the one before; head ${v.head.slice(0, 16)}…`
        : `BROKEN at entry ${v.broken_at}: ${v.problem}`;
    } catch (e) { $("audit-verified").textContent = e.message; }
  });
  $("report-csv").addEventListener("click", () => {
    const r = state.report;
    if (!r) return;
    const cols = ["camera", "coverage", "gaps", "oldest_ms", "min_days", "meets_floor", "holds", "deleted_segments", "accesses_allowed", "accesses_denied"];
    const q = (v) => `"${String(Array.isArray(v) ? v.length : v ?? "").replaceAll('"', '""')}"`;
    const text = [cols.join(","), ...(r.cameras || []).map((c) => cols.map((k) => q(k === "holds" ? (c.holds || []).join(" ") : c[k])).join(","))].join("\n");
    download(text, "custos-compliance.csv");
  });
  $("audit-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit().catch((e) => notice(e.message)); });
  $("audit-csv").addEventListener("click", () => download(csv(state.auditRows || []), "custos-audit.csv"));
  // A background check that the session is still alive (does not count as activity).
  setInterval(() => { if (state.session) api("/api/session", { background: true }).catch(() => {}); }, 20000);
  try {
    signedIn(await api("/api/session"));
  } catch (_) {
    show("sign-in");
  }
});

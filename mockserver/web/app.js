// The control room (contract 10): the platform's state from the JSON API, kept live by the
// event stream (GET /api/events). Events are queued and applied once per animation frame, and
// every list is capped, so a burst of thousands of files never freezes the page.
// No framework, no build step, nothing from another host; every text is set with textContent.

const FOLDERS = ["SEND_SMS", "PROCESSING", "ARCHIVES", "INVALIDS"];
const LANE_ITEMS = 12; // files drawn per lane; the rest is "+N more"
const SMS_KEPT = 60; // latest SMS fetched and shown as phones
const PHONES_SHOWN = 9;
const PER_PHONE = 3;
const MAIL_SHOWN = 12;
const TICKER_ITEMS = 30;
const EARLY_MS = 5000; // a claim may be published before the rename that made its name
const TOKEN_KEY = "allmysms-mock-token";

// -- what the browser measures (read by the end-to-end test) ------------------------------------

const stats = {
  events: 0, // events applied
  lastEventId: 0,
  frames: 0, // flushes that applied something
  maxFlushMs: 0, // longest apply + render of one flush
  longTasks: 0,
  maxLongTaskMs: 0,
  reloads: 0, // state reloads from the JSON API (start, reset, lost, overflow)
  connected: false,
  ready: false, // the first state is loaded and drawn
};
window.__controlRoomStats = stats;
if ("PerformanceObserver" in window && PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      stats.longTasks += 1;
      stats.maxLongTaskMs = Math.max(stats.maxLongTaskMs, entry.duration);
    }
  }).observe({ type: "longtask", buffered: true });
}

// -- small helpers -------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// replaceChildren, skipping the null / false of optional parts.
function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const nf = new Intl.NumberFormat("en-GB");
const fmt = (n) => nf.format(n);
const plural = (n, one, many) => `${fmt(n)} ${n === 1 ? one : many}`;
const PARIS = "Europe/Paris";
const clockFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: PARIS, weekday: "short", day: "2-digit", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const shortFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: PARIS, day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});
const timeFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: PARIS, hour: "2-digit", minute: "2-digit", second: "2-digit",
});

function phoneLabel(phone) {
  if (/^33\d{9}$/.test(phone)) {
    return `+33 ${phone[2]} ${phone.slice(3).replace(/(\d\d)(?=\d)/g, "$1 ")}`;
  }
  return `+${phone}`;
}

function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return d > 0 ? `${d} d ${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

let toastTimer = 0;
function toast(message, kind = "info") {
  const el = $("toast");
  el.textContent = message;
  el.dataset.kind = kind;
  el.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("shown"), kind === "error" ? 9000 : 5000);
}

// One call at a time, again once more if asked meanwhile, at most every `gap` ms.
function coalesced(fn, gap) {
  let running = false;
  let again = false;
  let last = -Infinity;
  const run = async () => {
    running = true;
    again = false;
    try {
      await fn();
    } catch (err) {
      report(err);
    } finally {
      last = performance.now();
      running = false;
      if (again) trigger();
    }
  };
  function trigger() {
    if (running) {
      again = true;
      return;
    }
    if (trigger.timer) return;
    const wait = Math.max(0, last + gap - performance.now());
    trigger.timer = setTimeout(() => {
      trigger.timer = 0;
      run();
    }, wait);
  }
  trigger.timer = 0;
  return trigger;
}

function report(err) {
  // Shown to the user, never thrown to the console: a demo page must stay quiet.
  toast(err instanceof ApiError ? err.message : `Unexpected: ${err}`, "error");
}

// -- the HTTP API --------------------------------------------------------------------------------

// server.api_token (contract 11): the page is opened once as /?token=…; the token is kept in
// sessionStorage (this tab only) and taken out of the address bar, so a projector never shows it.
function readToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY) || "";
}
const token = readToken();
let tokenNeeded = false;

// A 401: say so where it stays (not a toast), and take the token in a form. Calls and the event
// stream stop retrying until it is given (each retry would be one more 401 in the console).
function askToken() {
  if (tokenNeeded) return;
  tokenNeeded = true;
  $("token-needed").hidden = false;
  if (token) {
    $("token-why").textContent =
      "The token this tab was given is not the server's server.api_token: enter the right one.";
  }
  $("token-input").focus();
}

function tokenForm() {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const given = $("token-input").value.trim();
    if (!given) return;
    sessionStorage.setItem(TOKEN_KEY, given);
    window.location.reload();
  });
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, { json, body, type } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  } else if (method !== "GET") {
    headers["Content-Type"] = type || "application/json";
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch {
    throw new ApiError(0, "The mock server does not answer: is it still running?");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    let message = (data && data.error) || `${method} ${path}: HTTP ${res.status}`;
    if (res.status === 401) {
      message = "This server needs its API token: open the page as /?token=<server.api_token>.";
      askToken();
    }
    throw new ApiError(res.status, message);
  }
  return data;
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, v);
  return s.toString();
};

// -- state ---------------------------------------------------------------------------------------

const state = {
  accounts: new Map(), // login -> account
  lanes: new Map(), // login -> {SEND_SMS: Map, PROCESSING: Map, ARCHIVES: Map, INVALIDS: Map}
  early: new Map(), // login/name -> time a claim came before its rename (see EARLY_MS)
  lastInvalid: new Map(), // login -> file id of the newest invalid file
  invalidShown: new Map(), // login -> the full record drawn under the lanes
  smsTotal: 0,
  sms: [], // the latest SMS_KEPT, oldest first
  mailTotal: 0,
  mail: [],
  faults: [],
  processing: { mode: "auto", waiting: [] },
  clock: { at: Date.now(), synced: performance.now(), frozen: false },
  ticker: [],
};

const dirty = { accounts: new Set(), structure: false, sms: false, mail: false, ticker: false, faults: false, manual: false };

function lanesOf(login) {
  let lanes = state.lanes.get(login);
  if (!lanes) {
    lanes = Object.fromEntries(FOLDERS.map((f) => [f, new Map()]));
    state.lanes.set(login, lanes);
    dirty.structure = true;
  }
  return lanes;
}

function platformNow() {
  const { at, synced, frozen } = state.clock;
  return frozen ? at : at + (performance.now() - synced);
}

function setClock(view) {
  state.clock = { at: Date.parse(view.now), synced: performance.now(), frozen: Boolean(view.frozen) };
  drawClock();
  drawSms();
}

function fileEntry(file) {
  // The fields a lane needs, from a /api/files record or a file.finished event (whose own
  // `id` is the event's: the file's is `file_id`).
  const id = file.type === "file.finished" ? file.file_id : file.id;
  return {
    key: `f${id}`,
    id,
    name: file.type === "file.finished" ? file.name : file.original_name,
    final_name: file.final_name,
    status: file.status,
    reason: file.reason,
    sms_count: file.sms_count,
    cost: file.cost,
  };
}

function addFinished(login, entry) {
  const lanes = lanesOf(login);
  const folder = entry.status === "archived" ? "ARCHIVES" : "INVALIDS";
  lanes[folder].set(entry.key, entry);
  if (folder === "INVALIDS" && entry.id > (state.lastInvalid.get(login) || 0)) {
    state.lastInvalid.set(login, entry.id);
    fetchInvalid();
  }
}

// -- loading the whole state ---------------------------------------------------------------------

let loading = null;

async function loadAll({ keepSessions = true } = {}) {
  stats.reloads += 1;
  const [accounts, files, clock, faults, processing] = await Promise.all([
    api("GET", "/api/accounts"),
    api("GET", `/api/files?${q({ limit: 100000 })}`),
    api("GET", "/api/clock"),
    api("GET", "/api/faults"),
    api("GET", "/api/processing"),
  ]);
  const old = state.lanes;
  state.accounts = new Map(accounts.accounts.map((a) => [a.login, a]));
  state.lanes = new Map();
  state.lastInvalid = new Map();
  state.invalidShown = new Map();
  state.smsTotal = 0;
  for (const account of accounts.accounts) {
    const lanes = lanesOf(account.login);
    const before = old.get(account.login);
    if (keepSessions && before) {
      // Nothing lists SEND_SMS: keep what the stream showed there.
      lanes.SEND_SMS = before.SEND_SMS;
      lanes.PROCESSING = before.PROCESSING;
    }
  }
  for (const file of files.files) {
    state.smsTotal += file.sms_count;
    addFinished(file.login, fileEntry(file));
  }
  setProcessing(processing);
  setClock(clock);
  state.faults = faults.faults;
  dirty.faults = true;
  dirty.structure = true;
  for (const login of state.accounts.keys()) dirty.accounts.add(login);
  await Promise.all([loadSms(), loadMail()]);
  fetchInvalid();
}

function reload(opts) {
  if (!loading) {
    loading = loadAll(opts)
      .catch(report)
      .finally(() => {
        loading = null;
        stats.ready = true;
        schedule();
      });
  }
  return loading;
}

async function loadSms() {
  const offset = Math.max(0, state.smsTotal - SMS_KEPT);
  const data = await api("GET", `/api/messages?${q({ offset, limit: SMS_KEPT })}`);
  state.sms = data.messages;
  dirty.sms = true;
  schedule();
}
const refreshSms = coalesced(loadSms, 400);

async function loadMail() {
  const data = await api("GET", "/api/mail");
  state.mailTotal = data.mail.length;
  state.mail = data.mail.slice(-MAIL_SHOWN);
  dirty.mail = true;
  schedule();
}
const refreshMail = coalesced(loadMail, 1500);

const accountWanted = new Set();
const refreshAccounts = coalesced(async () => {
  const logins = [...accountWanted];
  accountWanted.clear();
  await Promise.all(
    logins.map(async (login) => {
      try {
        const account = await api("GET", `/api/accounts/${encodeURIComponent(login)}`);
        if (!state.accounts.has(login)) dirty.structure = true; // its files may have come first
        state.accounts.set(login, account);
        lanesOf(login);
        dirty.accounts.add(login);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    }),
  );
  schedule();
}, 250);

const fetchInvalid = coalesced(async () => {
  for (const [login, id] of state.lastInvalid) {
    if (state.invalidShown.get(login)?.id === id) continue;
    const entry = lanesOf(login).INVALIDS.get(`f${id}`);
    if (!entry) continue;
    const data = await api("GET", `/api/files?${q({ login, name: entry.final_name, status: "invalid" })}`);
    const record = data.files.find((f) => f.id === id);
    if (record) {
      state.invalidShown.set(login, record);
      dirty.accounts.add(login);
    }
  }
  schedule();
}, 500);

const refreshFaults = coalesced(async () => {
  state.faults = (await api("GET", "/api/faults")).faults;
  dirty.faults = true;
  schedule();
}, 500);

function setProcessing(data) {
  state.processing = data;
  dirty.manual = true;
}
const refreshProcessing = coalesced(async () => {
  setProcessing(await api("GET", "/api/processing"));
  schedule();
}, 300);

// -- the event stream ----------------------------------------------------------------------------

const queue = [];
let frame = 0;

function schedule() {
  if (!frame) frame = requestAnimationFrame(flush);
}

function splitPath(path) {
  const parts = String(path).split("/").filter(Boolean);
  if (parts.length === 2 && FOLDERS.includes(parts[0])) return { folder: parts[0], name: parts[1] };
  return null;
}

function intoSendSms(login, name, ev) {
  const early = state.early.get(`${login}/${name}`);
  if (early !== undefined && performance.now() - early < EARLY_MS) {
    state.early.delete(`${login}/${name}`); // already claimed: the rename came second
    return;
  }
  lanesOf(login).SEND_SMS.set(`s${name}`, { key: `s${name}`, name, tmp: /\.tmp$/i.test(name), protocol: ev.protocol });
}

function apply(ev) {
  const login = ev.login;
  switch (ev.type) {
    case "upload.closed": {
      const at = splitPath(ev.name);
      if (at && at.folder === "SEND_SMS") intoSendSms(login, at.name, ev);
      break;
    }
    case "file.renamed": {
      const from = splitPath(ev.name);
      const to = splitPath(ev.new_name);
      if (from && from.folder === "SEND_SMS") lanesOf(login).SEND_SMS.delete(`s${from.name}`);
      if (to && to.folder === "SEND_SMS") intoSendSms(login, to.name, ev);
      break;
    }
    case "file.deleted": {
      const at = splitPath(ev.name);
      if (at) lanesOf(login).SEND_SMS.delete(`s${at.name}`);
      break;
    }
    case "file.claimed": {
      const lanes = lanesOf(login);
      if (!lanes.SEND_SMS.delete(`s${ev.name}`)) {
        if (state.early.size > 5000) state.early.clear();
        state.early.set(`${login}/${ev.name}`, performance.now());
      }
      lanes.PROCESSING.set(`p${ev.name}`, { key: `p${ev.name}`, name: ev.name });
      if (state.processing.mode === "manual") refreshProcessing();
      break;
    }
    case "file.finished": {
      const lanes = lanesOf(login);
      lanes.PROCESSING.delete(`p${ev.name}`);
      lanes.SEND_SMS.delete(`s${ev.name}`);
      const entry = fileEntry(ev);
      const known = lanes.ARCHIVES.has(entry.key) || lanes.INVALIDS.has(entry.key);
      addFinished(login, entry);
      if (!known && ev.sms_count > 0) {
        state.smsTotal += ev.sms_count;
        refreshSms();
      }
      if (state.processing.mode === "manual") refreshProcessing();
      break;
    }
    case "mail.written":
      refreshMail();
      break;
    case "account.changed":
      if (ev.change === "removed") {
        state.accounts.delete(login);
        state.lanes.delete(login);
        dirty.structure = true;
      } else {
        accountWanted.add(login);
        refreshAccounts();
      }
      break;
    case "sms.sent":
      refreshSms();
      break;
    case "fault.fired":
      refreshFaults();
      break;
    case "clock.changed":
      setClock(ev);
      break;
    case "reset":
      for (const lanes of state.lanes.values()) {
        lanes.SEND_SMS.clear();
        lanes.PROCESSING.clear();
      }
      reload(); // SEND_SMS and PROCESSING were emptied above: what follows the reset stays
      break;
    default:
      break;
  }
  if (login) dirty.accounts.add(login);
  state.ticker.push(ev);
  if (state.ticker.length > TICKER_ITEMS) state.ticker.splice(0, state.ticker.length - TICKER_ITEMS);
  dirty.ticker = true;
}

function flush() {
  frame = 0;
  if (loading) return; // applied once the state is loaded: the stream's events go on top
  const began = performance.now();
  const batch = queue.splice(0, queue.length);
  for (const ev of batch) {
    apply(ev);
    stats.events += 1;
    if (ev.id > stats.lastEventId) stats.lastEventId = ev.id;
  }
  render();
  if (batch.length) {
    stats.frames += 1;
    stats.maxFlushMs = Math.max(stats.maxFlushMs, performance.now() - began);
  }
}

let source = null;

function connect() {
  const path = token ? `/api/events?${q({ access_token: token })}` : "/api/events";
  source = new EventSource(path);
  source.onopen = () => {
    stats.connected = true;
    drawLive("live");
    if (!stats.ready && !loading) reload();
  };
  source.onerror = () => {
    stats.connected = false;
    drawLive(source.readyState === EventSource.CLOSED ? "closed" : "wait");
    if (source.readyState === EventSource.CLOSED) {
      // Refused (401, 403, 503: too many streams): say why from the JSON API, try again later
      // (not while the token is asked for: the form reloads the page).
      if (!stats.ready && !loading) reload();
      setTimeout(() => {
        if (!tokenNeeded) connect();
      }, 5000);
    }
  };
  source.onmessage = null;
  const types = [
    "session.login", "session.login_failed", "upload.closed", "upload.refused", "file.renamed",
    "file.deleted", "file.claimed", "mail.written", "file.finished", "account.changed", "sms.sent",
    "fault.fired", "clock.changed", "reset",
  ];
  for (const type of types) {
    source.addEventListener(type, (msg) => {
      queue.push(JSON.parse(msg.data));
      schedule();
    });
  }
  // Events we missed (no longer retained, or we fell behind): the JSON API has the truth.
  source.addEventListener("lost", () => reload());
  source.addEventListener("overflow", () => reload());
}

// -- drawing -------------------------------------------------------------------------------------

function drawLive(kind) {
  const el = $("live");
  el.className = `pill pill-${kind}`;
  el.textContent = { live: "Live", wait: "Reconnecting…", closed: "Disconnected" }[kind];
}

function drawClock() {
  const now = platformNow();
  $("clock-now").textContent = clockFormat.format(now);
  $("clock-state").textContent = state.clock.frozen ? "frozen" : "";
  $("clock-dialog-now").textContent = `${clockFormat.format(now)} (Paris)${state.clock.frozen ? ", frozen" : ""}`;
}

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
const laneDom = new Map(); // login -> {section, lanes: {folder: {ul, count, more, items: Map}}}

function render() {
  if (dirty.structure) drawStructure();
  for (const login of dirty.accounts) drawAccount(login);
  dirty.accounts.clear();
  if (dirty.sms) drawSms();
  if (dirty.mail) drawMail();
  if (dirty.ticker) drawTicker();
  if (dirty.faults) drawFaults();
  if (dirty.manual) drawManual();
}

function drawStructure() {
  dirty.structure = false;
  const host = $("accounts");
  const logins = [...state.accounts.keys()];
  for (const login of [...laneDom.keys()]) {
    if (!state.accounts.has(login)) {
      laneDom.get(login).section.remove();
      laneDom.delete(login);
    }
  }
  for (const login of logins) {
    if (!laneDom.has(login)) {
      laneDom.set(login, buildAccount(login));
      dirty.accounts.add(login);
    }
    host.append(laneDom.get(login).section); // keeps the accounts' order
  }
  if (!logins.length) put(host, h("p", { class: "empty", text: "No account." }));
  else host.querySelector(":scope > p.empty")?.remove();
  // Login pickers.
  for (const id of ["drop-login", "check-login"]) {
    const select = $(id);
    const keep = select.value;
    const fixed = id === "check-login" ? [h("option", { value: "", text: "no account (enough credits)" })] : [];
    select.replaceChildren(...fixed, ...logins.map((l) => h("option", { value: l, text: l })));
    if (logins.includes(keep) || (keep === "" && id === "check-login")) select.value = keep;
  }
  $("drop-login-name").textContent = $("drop-login").value || "the selected login";
}

const LANE_HELP = {
  SEND_SMS: "uploaded, waiting to be picked up",
  PROCESSING: "picked up, being judged",
  ARCHIVES: "accepted, SMS sent or scheduled",
  INVALIDS: "refused, nothing sent",
};

function buildAccount(login) {
  const lanes = {};
  const laneEls = FOLDERS.map((folder) => {
    const ul = h("ul", { class: "files" });
    const count = h("span", { class: "count", text: "0" });
    const more = h("p", { class: "more", hidden: true });
    const section = h(
      "section",
      { class: `lane lane-${folder.toLowerCase()}`, dataset: { folder, count: "0" }, "aria-label": `${login} ${folder}` },
      h("h3", {}, h("span", { class: "lane-name", text: folder }), count),
      h("p", { class: "lane-help", text: LANE_HELP[folder] }),
      ul,
      more,
    );
    lanes[folder] = { section, ul, count, more, items: new Map() };
    return section;
  });
  const credits = h("span", { class: "credits-value" });
  const topUp = h("button", { type: "button", class: "small-button", text: "Top up", onclick: () => openCredits(login) });
  const meta = h("span", { class: "muted small account-meta" });
  const invalid = h("div", { class: "invalid-card", hidden: true });
  const section = h(
    "section",
    { class: "account", dataset: { login }, "aria-label": `Login ${login}` },
    h(
      "header",
      { class: "account-head" },
      h("div", {}, h("h2", { text: login }), meta),
      h("div", { class: "credits" }, h("span", { class: "credits-label", text: "Credits" }), credits, topUp),
    ),
    h("div", { class: "lanes" }, laneEls),
    invalid,
  );
  return { section, lanes, credits, meta, invalid };
}

function drawAccount(login) {
  const dom = laneDom.get(login);
  const account = state.accounts.get(login);
  if (!dom || !account) return;
  const shown = account.subscription ? "subscription" : fmt(account.credits);
  if (dom.credits.textContent !== shown) {
    dom.credits.textContent = shown;
    // The Web Animations API: no forced layout (a class toggled off and on again would be).
    if (stats.ready && !reducedMotion.matches) {
      dom.credits.animate([{ color: "#a86400" }, { color: "inherit" }], { duration: 600, easing: "ease-out" });
    }
  }
  dom.credits.dataset.credits = String(account.credits);
  dom.meta.textContent = `${account.email}${account.subscription ? " · subscription" : ""}${account.configured ? "" : " · created at run time"}`;
  const lanes = lanesOf(login);
  for (const folder of FOLDERS) drawLane(login, dom.lanes[folder], lanes[folder], folder);
  drawInvalid(login, dom.invalid);
}

function drawLane(login, dom, items, folder) {
  const total = items.size;
  dom.count.textContent = fmt(total);
  dom.section.dataset.count = String(total);
  // Newest first: Maps keep insertion order, so take the last LANE_ITEMS.
  const keys = [...items.keys()].slice(-LANE_ITEMS).reverse();
  const wanted = new Set(keys);
  for (const [key, el] of dom.items) {
    if (!wanted.has(key)) {
      el.remove();
      dom.items.delete(key);
    }
  }
  const fresh = dom.items.size > 0 || stats.ready;
  keys.forEach((key, index) => {
    let el = dom.items.get(key);
    if (!el) {
      el = chip(login, items.get(key), folder);
      if (fresh) el.classList.add("enter");
      dom.items.set(key, el);
    }
    if (dom.ul.children[index] !== el) dom.ul.insertBefore(el, dom.ul.children[index] || null);
  });
  const hidden = total - keys.length;
  dom.more.hidden = hidden <= 0;
  dom.more.textContent = hidden > 0 ? `+${fmt(hidden)} more` : "";
}

function chip(login, item, folder) {
  const name = h("span", { class: "file-name", text: item.name });
  if (folder === "SEND_SMS" || folder === "PROCESSING") {
    const note = folder === "PROCESSING" ? "judging…" : item.tmp ? `uploading (${item.protocol || "?"})` : `via ${item.protocol || "disk"}`;
    return h("li", { class: `file${item.tmp ? " tmp" : ""}` }, h("div", { class: "file-body" }, name, h("span", { class: "file-meta", text: note })));
  }
  const meta =
    folder === "ARCHIVES"
      ? `${plural(item.sms_count, "SMS", "SMS")} · ${plural(item.cost, "credit", "credits")}`
      : item.reason || "invalid";
  return h(
    "li",
    { class: "file" },
    h(
      "button",
      { type: "button", class: "file-body", title: item.final_name, "aria-haspopup": "dialog", onclick: () => openFile(login, item) },
      name,
      h("span", { class: "file-meta", text: meta }),
    ),
  );
}

function rejectedTable(rows, limit = 100) {
  if (!rows.length) return null;
  const shown = rows.slice(0, limit);
  return h(
    "table",
    { class: "rejected" },
    h("caption", { text: `${plural(rows.length, "rejected row", "rejected rows")}${rows.length > limit ? ` (first ${limit})` : ""}` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Line" }), h("th", { scope: "col", text: "Why" }))),
    h(
      "tbody",
      {},
      shown.map((r) => h("tr", {}, h("td", { class: "num", text: String(r.line) }), h("td", {}, h("code", { text: r.error }), h("br"), r.detail))),
    ),
  );
}

function hintList(hints) {
  if (!hints || !hints.length) return null;
  return h(
    "ul",
    { class: "hints" },
    hints.map((hint) =>
      h("li", {}, h("strong", { text: "Hint: " }), hint.message, hint.lines?.length ? h("span", { class: "muted", text: ` (lines ${hint.lines.join(", ")})` }) : null),
    ),
  );
}

function drawInvalid(login, el) {
  const record = state.invalidShown.get(login);
  if (!record) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  put(el, 
    h("h3", {}, "Latest invalid file: ", h("code", { text: record.original_name })),
    h("p", {}, h("span", { class: "reason", text: record.reason }), " ", record.detail),
    rejectedTable(record.rejected, 5),
    record.rejected.length > 5 ? h("button", { type: "button", class: "small-button", text: "Every rejected row", onclick: () => openFile(login, fileEntry(record)) }) : null,
    hintList(record.hints),
  );
}

function smsBubble(sms, now) {
  const due = Date.parse(sms.scheduled_at);
  const scheduled = Number.isFinite(due) && due > now;
  const status = h("span", { class: `sms-status ${scheduled ? "scheduled" : "sent"}` });
  if (scheduled) status.dataset.due = String(due);
  status.textContent = scheduled ? `scheduled · in ${countdown(due - now)}` : `sent · ${shortFormat.format(Number.isFinite(due) ? due : now)}`;
  const warnings = sms.warnings.map((w) => h("span", { class: "warning", text: w.replaceAll("_", " ") }));
  const asked = sms.sender_asked && sms.sender_asked !== sms.sender_applied ? h("span", { class: "asked", text: ` (asked ${sms.sender_asked})` }) : null;
  return h(
    "li",
    { class: "sms", dataset: { id: String(sms.id) } },
    h("p", { class: "sender" }, h("strong", { text: sms.sender_applied }), asked),
    h("p", { class: "bubble", text: sms.message }),
    h("p", { class: "sms-meta" }, `${plural(sms.septets, "septet", "septets")} · `, status),
    warnings.length ? h("p", { class: "warnings" }, warnings) : null,
  );
}

function drawSms() {
  dirty.sms = false;
  const host = $("phones");
  $("sms-total").textContent = state.smsTotal ? `${plural(state.smsTotal, "SMS", "SMS")}${state.smsTotal > SMS_KEPT ? `, latest ${SMS_KEPT}` : ""}` : "";
  host.dataset.total = String(state.smsTotal);
  if (!state.sms.length) {
    put(host, h("p", { class: "empty", text: "No SMS yet. Drop a file." }));
    return;
  }
  const now = platformNow();
  const phones = new Map();
  for (let i = state.sms.length - 1; i >= 0; i -= 1) {
    const sms = state.sms[i];
    if (!phones.has(sms.phone)) {
      if (phones.size >= PHONES_SHOWN) continue;
      phones.set(sms.phone, []);
    }
    const list = phones.get(sms.phone);
    if (list.length < PER_PHONE) list.unshift(sms);
  }
  put(host, 
    ...[...phones].map(([phone, list]) =>
      h(
        "article",
        { class: "phone", "aria-label": `Phone ${phoneLabel(phone)}` },
        h("header", { class: "phone-head" }, h("span", { class: "phone-number", text: phoneLabel(phone) })),
        h("ol", { class: "thread" }, list.map((sms) => smsBubble(sms, now))),
      ),
    ),
  );
}

function tickCountdowns() {
  drawClock();
  const now = platformNow();
  let passed = false;
  for (const el of document.querySelectorAll("[data-due]")) {
    const due = Number(el.dataset.due);
    if (due <= now) passed = true;
    else el.textContent = `scheduled · in ${countdown(due - now)}`;
  }
  if (passed) drawSms();
}

function drawMail() {
  dirty.mail = false;
  const host = $("mail");
  $("mail-total").textContent = state.mailTotal ? `${fmt(state.mailTotal)}${state.mailTotal > MAIL_SHOWN ? `, latest ${MAIL_SHOWN}` : ""}` : "";
  host.dataset.total = String(state.mailTotal);
  if (!state.mail.length) {
    put(host, h("li", { class: "empty", text: "No recap yet." }));
    return;
  }
  put(host, 
    ...state.mail
      .slice()
      .reverse()
      .map((m) =>
        h(
          "li",
          {},
          h(
            "details",
            {},
            h("summary", {}, h("span", { class: "mail-subject", text: m.subject }), h("span", { class: "muted small", text: ` to ${m.to}` })),
            h("pre", { class: "mail-body", text: m.body }),
          ),
        ),
      ),
  );
}

function tickerLine(ev) {
  const what = {
    "upload.closed": () => `${ev.protocol} upload ${ev.name} (${fmt(ev.bytes)} bytes)`,
    "upload.refused": () => `${ev.protocol} upload refused ${ev.name}: ${ev.reason}`,
    "file.renamed": () => `renamed ${ev.name} → ${ev.new_name}`,
    "file.deleted": () => `deleted ${ev.name}`,
    "file.claimed": () => `${ev.name} → PROCESSING`,
    "file.finished": () => `${ev.name} → ${ev.folder}${ev.reason ? ` (${ev.reason})` : ""}`,
    "mail.written": () => "recap e-mail written",
    "account.changed": () => `account ${ev.change}`,
    "sms.sent": () => `campaign ${ev.campaign}: ${plural(ev.sms_count, "SMS", "SMS")} sent`,
    "fault.fired": () => `fault #${ev.rule_id} fired: ${ev.on} → ${ev.action}`,
    "clock.changed": () => `clock ${ev.frozen ? "frozen at" : "runs from"} ${clockFormat.format(Date.parse(ev.now))}`,
    "session.login": () => `${ev.protocol} login from ${ev.address}`,
    "session.login_failed": () => `${ev.protocol} login refused (${ev.reason})`,
    reset: () => "platform reset",
  }[ev.type];
  return what ? what() : ev.type;
}

function drawTicker() {
  dirty.ticker = false;
  put($("ticker"), 
    ...state.ticker
      .slice()
      .reverse()
      .map((ev) =>
        h(
          "li",
          { class: `tick tick-${ev.type.replace(".", "-")}` },
          h("time", { datetime: ev.time, text: timeFormat.format(Date.parse(ev.time)) }),
          ev.login ? h("span", { class: "tick-login", text: ev.login }) : null,
          h("span", { class: "tick-what", text: tickerLine(ev) }),
        ),
      ),
  );
}

function ruleText(rule) {
  const parts = [`on ${rule.on}`, rule.protocol && rule.protocol !== "any" ? `over ${rule.protocol}` : null, rule.login ? `for ${rule.login}` : null, rule.name ? `files ${rule.name}` : null, `→ ${rule.action}`];
  if (rule.seconds !== undefined && rule.seconds !== null) parts.push(`${rule.seconds} s`);
  if (rule.bytes !== undefined && rule.bytes !== null) parts.push(`after ${rule.bytes} bytes`);
  if (rule.reason) parts.push(rule.reason);
  if (rule.code) parts.push(String(rule.code));
  parts.push(rule.probability !== undefined && rule.probability !== null ? `p=${rule.probability}` : rule.times === 0 ? "until removed" : `${rule.times}×`);
  if (rule.source === "config") parts.push("(config file)");
  return parts.filter(Boolean).join(" ");
}

function drawFaults() {
  dirty.faults = false;
  // The badge counts the rules that can still fire (a `times` rule fired out is spent).
  const live = state.faults.filter((r) => r.probability !== undefined || !r.times || r.fired < r.times);
  const badge = $("faults-count");
  badge.hidden = live.length === 0;
  badge.textContent = String(live.length);
  const body = $("faults-list");
  if (!state.faults.length) {
    put(body, h("tr", {}, h("td", { colspan: "4", class: "empty", text: "No rule: the platform behaves." })));
    return;
  }
  put(body, 
    ...state.faults.map((rule) =>
      h(
        "tr",
        {},
        h("td", { class: "num", text: String(rule.id) }),
        h("td", { text: ruleText(rule) }),
        h("td", { class: "num", text: String(rule.fired) }),
        h("td", {}, h("button", { type: "button", class: "small-button", "aria-label": `Remove rule ${rule.id}`, text: "Remove", onclick: () => removeFault(rule.id) })),
      ),
    ),
  );
}

function drawManual() {
  dirty.manual = false;
  const { mode, waiting } = state.processing;
  $("manual").hidden = mode !== "manual";
  put($("manual-list"), 
    ...(waiting.length
      ? waiting.slice(0, 50).map((w) =>
          h(
            "li",
            {},
            h("span", { class: "tick-login", text: w.login }),
            h("code", { text: w.name }),
            h("button", { type: "button", class: "small-button", text: "Advance", onclick: () => advance({ name: w.name, login: w.login }) }),
          ),
        )
      : [h("li", { class: "empty", text: "No file waits." })]),
  );
  $("advance-all").disabled = waiting.length === 0;
}

// -- actions -------------------------------------------------------------------------------------

async function act(fn, okMessage) {
  try {
    const result = await fn();
    if (okMessage) toast(typeof okMessage === "function" ? okMessage(result) : okMessage);
    return result;
  } catch (err) {
    report(err);
    return undefined;
  }
}

async function dropFiles(files) {
  const login = $("drop-login").value;
  if (!login) {
    toast("No login to drop into.", "error");
    return;
  }
  for (const file of files) {
    await act(
      () => api("POST", `/api/files?${q({ login, name: file.name })}`, { body: file, type: "text/csv" }),
      (r) => `${r.name} (${plural(r.bytes, "byte", "bytes")}) dropped into SEND_SMS of ${r.login}`,
    );
  }
}

async function openFile(login, item) {
  const dialog = $("file-dialog");
  const body = $("file-dialog-body");
  $("file-dialog-title").textContent = item.name;
  put(body, h("p", { class: "muted", text: "Loading…" }));
  dialog.showModal();
  const data = await act(() => api("GET", `/api/files?${q({ login, name: item.final_name })}`));
  const record = data?.files.find((f) => f.id === item.id);
  if (!record) {
    put(body, h("p", { text: "This file is no longer on the platform." }));
    return;
  }
  put(body, 
    h(
      "dl",
      { class: "facts" },
      h("dt", { text: "Verdict" }),
      h("dd", {}, h("span", { class: `verdict ${record.status}`, text: record.status }), record.reason ? ` ${record.reason}` : ""),
      h("dt", { text: "In" }),
      h("dd", {}, h("code", { text: `${record.folder}/${record.final_name}` })),
      record.detail ? [h("dt", { text: "Why" }), h("dd", { text: record.detail })] : null,
      h("dt", { text: "Campaign" }),
      h("dd", { text: `${record.campaign ?? "—"}${record.send_at ? `, sends ${shortFormat.format(Date.parse(record.send_at))}` : ""}` }),
      h("dt", { text: "Rows" }),
      h("dd", { text: `${fmt(record.rows)} read, ${plural(record.sms_count, "SMS", "SMS")}, ${plural(record.cost, "credit", "credits")}` }),
      record.duplicate_of ? [h("dt", { text: "Duplicate of" }), h("dd", { text: record.duplicate_of.final_name })] : null,
    ),
    hintList(record.hints),
    rejectedTable(record.rejected),
  );
}

function verdictView(v) {
  const sms = v.sms.slice(0, 20);
  return h(
    "div",
    { class: "verdict-view" },
    h("p", {}, h("span", { class: `verdict ${v.status}`, text: v.status }), " ", v.final_name ? h("code", { text: v.final_name }) : null),
    v.detail ? h("p", { text: v.detail }) : null,
    h("p", { class: "muted", text: `${fmt(v.rows)} rows read, ${plural(v.sms_count, "SMS", "SMS")}, ${plural(v.cost, "credit", "credits")}` }),
    hintList(v.hints),
    rejectedTable(v.rejected),
    sms.length ? h("h3", { text: v.sms.length > sms.length ? `The first ${sms.length} SMS` : "The SMS" }) : null,
    sms.length
      ? h(
          "ol",
          { class: "thread check-thread" },
          sms.map((s) => {
            const li = smsBubble({ ...s, scheduled_at: v.send_at }, platformNow());
            li.prepend(h("p", { class: "phone-number", text: `${phoneLabel(s.phone)} · line ${s.line}` }));
            return li;
          }),
        )
      : null,
  );
}

async function removeFault(id) {
  await act(() => api("DELETE", `/api/faults/${id}`), `Rule ${id} removed`);
  refreshFaults();
}

async function advance(body) {
  await act(() => api("POST", "/api/processing/advance", { json: body }), (r) => `${plural(r.advanced.length, "file", "files")} advanced`);
  refreshProcessing();
}

async function putClock(body) {
  $("clock-error").textContent = "";
  try {
    setClock(await api("PUT", "/api/clock", { json: body }));
  } catch (err) {
    $("clock-error").textContent = err.message;
  }
}

let creditsLogin = "";
function openCredits(login) {
  creditsLogin = login;
  $("credits-login").textContent = login;
  $("credits-value").value = String(state.accounts.get(login)?.credits ?? 0);
  $("credits-error").textContent = "";
  $("credits-dialog").showModal();
}

function parisInputValue(ms) {
  // "YYYY-MM-DDTHH:MM:SS" in Paris wall time, for <input type="datetime-local">.
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: PARIS, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(ms)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

function wire() {
  tokenForm();
  const zone = $("drop-zone");
  const input = $("drop-input");
  zone.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    await dropFiles(files);
  });
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    depth += 1;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
  });
  document.addEventListener("drop", (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    dropFiles([...e.dataTransfer.files]);
  });
  $("drop-login").addEventListener("change", () => {
    $("drop-login-name").textContent = $("drop-login").value;
  });

  $("check-button").addEventListener("click", () => {
    put($("check-result"), );
    $("check-dialog").showModal();
  });
  $("check-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("check-input").files[0];
    if (!file) return;
    const result = $("check-result");
    put(result, h("p", { class: "muted", text: "Checking…" }));
    try {
      const verdict = await api("POST", `/api/check?${q({ name: file.name, login: $("check-login").value })}`, { body: file, type: "text/csv" });
      put(result, verdictView(verdict));
    } catch (err) {
      put(result, h("p", { class: "error", text: err.message }));
    }
  });

  $("faults-button").addEventListener("click", () => {
    refreshFaults();
    $("fault-error").textContent = "";
    $("faults-dialog").showModal();
  });
  $("fault-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const rule = { on: form.get("on"), action: form.get("action") };
    const operation = ["login", "list", "upload", "rename", "delete", "download"].includes(rule.on);
    if (operation && form.get("protocol") !== "any") rule.protocol = form.get("protocol");
    for (const key of ["login", "name", "message", "reason"]) if (form.get(key)) rule[key] = form.get(key);
    for (const key of ["times", "seconds", "bytes", "code"]) if (form.get(key) !== "") rule[key] = Number(form.get(key));
    try {
      const added = await api("POST", "/api/faults", { json: rule });
      $("fault-error").textContent = "";
      toast(`Rule ${added.id} added: ${ruleText(added)}`);
      refreshFaults();
    } catch (err) {
      $("fault-error").textContent = err.message;
    }
  });
  $("faults-clear").addEventListener("click", async () => {
    await act(() => api("DELETE", "/api/faults"), (r) => `${plural(r.removed, "rule", "rules")} removed`);
    refreshFaults();
  });

  $("clock-button").addEventListener("click", () => {
    $("clock-at").value = parisInputValue(platformNow());
    $("clock-error").textContent = "";
    $("clock-dialog").showModal();
  });
  $("clock-set").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("clock-at").value;
    putClock({ now: value.length === 16 ? `${value}:00` : value });
  });
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => putClock({ advance_seconds: Number(button.dataset.advance) }));
  }
  $("clock-real").addEventListener("click", () => putClock({ real: true }));

  $("reset-button").addEventListener("click", () => $("reset-dialog").showModal());
  $("reset-dialog").addEventListener("close", async () => {
    if ($("reset-dialog").returnValue !== "reset") return;
    $("reset-dialog").returnValue = "";
    await act(() => api("POST", "/api/reset"), "The platform is reset");
  });

  $("credits-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const account = await api("PATCH", `/api/accounts/${encodeURIComponent(creditsLogin)}`, { json: { credits: Number($("credits-value").value) } });
      state.accounts.set(account.login, account);
      dirty.accounts.add(account.login);
      schedule();
      $("credits-dialog").close();
      toast(`${account.login} has ${plural(account.credits, "credit", "credits")}`);
    } catch (err) {
      $("credits-error").textContent = err.message;
    }
  });
  for (const button of document.querySelectorAll("[data-add]")) {
    button.addEventListener("click", () => {
      const input = $("credits-value");
      input.value = String((Number(input.value) || 0) + Number(button.dataset.add));
    });
  }

  $("advance-all").addEventListener("click", () => advance({}));

  // A click on the backdrop of a modal dialog closes it (Escape does natively).
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) dialog.close();
    });
  }
}

wire();
connect();
setInterval(tickCountdowns, 1000);

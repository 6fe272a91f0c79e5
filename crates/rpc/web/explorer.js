"use strict";
// The explorer (latest blocks; block, transaction and address pages linked to each other; the
// search box), the charts, and the live updates the node pushes on /events. Uses rpc(), fill(),
// link(), coins(), bytes(), short() and refresh() of dashboard.js.

// ---- Explorer ----------------------------------------------------------------------------

const explorerBody = () => document.getElementById("explorer-body");

function definitions(pairs) {
  const dl = document.createElement("dl");
  for (const [term, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value === null || value === undefined ? "" : String(value);
    if (typeof value === "string" && value.length >= 40) dd.className = "mono";
    dl.append(dt, dd);
  }
  return dl;
}

let tables = 0;
function table(head, rows) {
  const t = document.createElement("table");
  t.id = "explorer-table-" + ++tables;
  explorerBody().appendChild(t);
  fill(t.id, head, rows);
  return t;
}

function explorerTitle(text) {
  document.getElementById("explorer-title").textContent = text;
}

async function showLatest() {
  explorerTitle("Latest blocks");
  const blocks = await rpc("chain.blocks", { limit: 25 });
  explorerBody().replaceChildren();
  table(["height", "hash", "time", "transactions", "size", "interval"], blocks.map((b) => [
    link(String(b.height), "block/" + b.height), [link(b.hash, "block/" + b.hash), "mono"],
    new Date(b.time * 1000).toLocaleString(), b.tx_count, bytes(b.size), b.interval === null ? "" : `${b.interval} s`]));
}

// Who an output pays: an address (linked) or the kind of contract.
function payee(lock) {
  if (lock.address) return link(lock.address, "address/" + lock.address);
  return lock.type;
}

function outputAmount(o) {
  return o.asset === "coin" ? coins(o.amount) + " coin" : `${o.amount} ${short(o.asset)}`;
}

async function showBlock(which) {
  const b = await rpc("chain.block", { block: /^\d{1,10}$/.test(which) ? Number(which) : which });
  explorerTitle(`Block ${b.height}`);
  explorerBody().replaceChildren(definitions([
    ["hash", b.hash],
    ["height", b.height],
    ["previous", b.height > 0 ? link(b.prev_hash, "block/" + b.prev_hash) : "none (genesis)"],
    ["next", b.in_main_chain ? link(String(b.height + 1), "block/" + (b.height + 1)) : ""],
    ["main chain", b.in_main_chain ? `yes, ${b.confirmations} confirmations` : "no"],
    ["time", new Date(b.time * 1000).toLocaleString()],
    ["bits", b.bits], ["nonce", b.nonce], ["size", bytes(b.size)], ["merkle root", b.merkle_root],
  ]));
  table(["txid", "inputs", "outputs", "paid"], b.tx.map((t) => [
    [link(t.txid, "tx/" + t.txid), "mono"], t.coinbase ? "coinbase" : t.inputs.length, t.outputs.length,
    coins(t.outputs.filter((o) => o.asset === "coin").reduce((sum, o) => sum + o.amount, 0))]));
}

async function showTx(txid) {
  const t = await rpc("chain.tx", { txid });
  explorerTitle("Transaction");
  explorerBody().replaceChildren(definitions([
    ["txid", t.txid],
    ["block", t.block_hash ? link(`${t.block_height}`, "block/" + t.block_hash) : "in the mempool"],
    ["confirmations", t.confirmations],
    ["size", bytes(t.size)],
  ]));
  const inputs = document.createElement("h2");
  inputs.textContent = "Inputs";
  explorerBody().appendChild(inputs);
  table(["spends"], t.inputs.map((i) => [i.coinbase_height !== undefined ? `new coins of block ${i.coinbase_height}` :
    [link(`${i.txid}:${i.index}`, "tx/" + i.txid), "mono"]]));
  const outputs = document.createElement("h2");
  outputs.textContent = "Outputs";
  explorerBody().appendChild(outputs);
  table(["#", "to", "amount"], t.outputs.map((o, n) => [n, [payee(o.lock), "mono"], outputAmount(o)]));
}

async function showAddress(address) {
  const a = await rpc("chain.address", { address, limit: 50 });
  explorerTitle("Address");
  const qr = document.createElement("div");
  qr.id = "address-qr";
  qr.className = "qr";
  const behind = a.indexed_height === null || a.indexed_height < a.tip_height;
  explorerBody().replaceChildren(definitions([
    ["address", a.address],
    ["balance", coins(a.balance) + " coin"],
    ["received", coins(a.received)], ["sent", coins(a.sent)], ["transactions", a.tx_count],
    ["index", behind ? `catching up: block ${a.indexed_height ?? "none"} of ${a.tip_height}` : "up to date"],
  ]), qr);
  showQr("address-qr", a.address);
  table(["txid", "block", "received", "sent", "confirmations"], a.txs.map((t) => [
    [link(t.txid, "tx/" + t.txid), "mono"], link(String(t.height), "block/" + t.height), coins(t.received),
    coins(t.sent), t.confirmations]));
}

// The page for the location's hash: `#/explorer`, `#/block/<height or hash>`, `#/tx/<txid>`,
// `#/address/<address>`; anything else is the overview.
async function route() {
  const [, view, arg] = location.hash.split("/");
  const explorer = ["explorer", "block", "tx", "address"].includes(view);
  document.getElementById("explorer").hidden = !explorer;
  document.getElementById("overview").hidden = explorer;
  if (!explorer) return drawCharts();
  try {
    if (view === "block") await showBlock(decodeURIComponent(arg));
    else if (view === "tx") await showTx(decodeURIComponent(arg));
    else if (view === "address") await showAddress(decodeURIComponent(arg));
    else await showLatest();
  } catch (e) {
    explorerTitle("Not found");
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = e.message;
    explorerBody().replaceChildren(p);
  }
}

// Search: a height, a block hash or txid (64 hex digits: a block if there is one, else a
// transaction), or an address.
document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = document.getElementById("search-text").value.trim();
  if (!text) return;
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    const block = await rpc("chain.block", { block: text }).catch(() => null);
    location.hash = (block ? "#/block/" : "#/tx/") + text.toLowerCase();
  } else if (/^\d{1,10}$/.test(text)) location.hash = "#/block/" + text;
  else location.hash = "#/address/" + encodeURIComponent(text);
});
window.addEventListener("hashchange", route);

// ---- Charts ------------------------------------------------------------------------------

// Each chart by name, for the browser test to read what it draws.
const charts = {};
window.charts = charts;
const samples = [];
const SAMPLES_DRAWN = 900;

function chart(name, id, series, scaleX, data) {
  const element = document.getElementById(id);
  const width = Math.max(element.clientWidth, 280);
  if (charts[name]) {
    charts[name].setData(data);
    if (Math.abs(charts[name].width - width) > 4) charts[name].setSize({ width, height: 170 });
    return;
  }
  charts[name] = new uPlot({
    width, height: 170, legend: { live: false },
    scales: { x: { time: scaleX === "time" } },
    series: [{ label: scaleX === "time" ? "time" : "height" }, ...series],
    axes: [{}, { size: 70 }],
  }, data, element);
}

const line = (label, stroke) => ({ label, stroke, width: 1.5, points: { show: false } });

async function drawBlockCharts() {
  const blocks = (await rpc("chain.blocks", { limit: 100 })).reverse();
  // Block 1's interval runs from the genesis block's fixed date, not from a mined block.
  const withInterval = blocks.filter((b) => b.interval !== null && b.height > 1);
  chart("intervals", "chart-intervals", [line("seconds", "#2851a3")], "height",
    [withInterval.map((b) => b.height), withInterval.map((b) => b.interval)]);
  chart("difficulty", "chart-difficulty", [line("difficulty", "#b0601e")], "height",
    [blocks.map((b) => b.height), blocks.map((b) => b.difficulty)]);
}

function drawSampleCharts() {
  const shown = samples.slice(-SAMPLES_DRAWN);
  const times = shown.map((s) => s.time);
  chart("mempool", "chart-mempool", [line("mempool", "#2851a3"), line("peers", "#17803d")], "time",
    [times, shown.map((s) => s.mempool_size), shown.map((s) => s.peers)]);
  chart("rates", "chart-rates", [line("upload", "#b0601e"), line("download", "#2851a3")], "time",
    [times, shown.map((s) => s.upload_rate), shown.map((s) => s.download_rate)]);
}

function drawCharts() {
  if (document.getElementById("overview").hidden) return;
  drawSampleCharts();
  drawBlockCharts().catch(() => {});
}

window.addEventListener("resize", drawCharts);

// ---- Live updates ------------------------------------------------------------------------

// What the tables show changes only with these: a sample that differs in none of them needs
// no refresh.
const stateOf = (s) => [s.height, s.best_hash, s.mempool_size, s.mempool_bytes, s.peers, s.uploaded_bytes,
  s.downloaded_bytes, s.active_downloads, s.offers, s.loan_offers].join(" ");
let lastState = "";
window.liveEvents = { history: 0, sample: 0, block: 0 };

function status(text, ok) {
  const element = document.getElementById("status");
  element.textContent = text;
  element.className = ok ? "" : "error";
}

function listen() {
  const events = new EventSource(location.origin + "/events");
  events.addEventListener("history", (e) => {
    window.liveEvents.history++;
    samples.splice(0, samples.length, ...JSON.parse(e.data));
    drawCharts();
  });
  events.addEventListener("sample", (e) => {
    window.liveEvents.sample++;
    const sample = JSON.parse(e.data);
    samples.push(sample);
    if (samples.length > SAMPLES_DRAWN * 2) samples.splice(0, samples.length - SAMPLES_DRAWN);
    const state = stateOf(sample);
    if (state !== lastState) {
      lastState = state;
      refresh();
    }
    if (!document.getElementById("overview").hidden) drawSampleCharts();
    status("live · " + new Date(sample.time * 1000).toLocaleTimeString(), true);
  });
  events.addEventListener("block", () => {
    window.liveEvents.block++;
    refresh();
    route();
  });
  // The stream fell behind: read everything again.
  events.addEventListener("lagged", () => refresh());
  events.onopen = () => status("live", true);
  events.onerror = () => {
    // Logged out (the stream answers 401): to the login page; otherwise the browser retries.
    rpc("node.id").catch(() => {});
    status("reconnecting…", false);
  };
}

route();
listen();

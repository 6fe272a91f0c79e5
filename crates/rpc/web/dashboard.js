"use strict";
// Everything shown comes from the node's JSON-RPC API on this same address; the browser sends
// its session cookie (from the login page) with each call. The node pushes what changes
// (explorer.js listens), so nothing here polls.
async function rpc(method, params) {
  // The origin, not a relative URL: a page opened as http://user:password@host/ would resolve
  // "/" with the credentials in it, which browsers refuse to fetch.
  const response = await fetch(location.origin + "/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params || {} }),
  });
  if (response.status === 401) {
    location.assign("/login");
    throw new Error("logged out");
  }
  const answer = await response.json();
  if (answer.error) throw new Error(answer.error.message);
  return answer.result;
}

const COIN = 100000000;
const coins = (units) => (units / COIN).toFixed(8);
const short = (text) => (text && text.length > 20 ? text.slice(0, 10) + "…" + text.slice(-8) : text || "");
const bytes = (n) => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
};

// An asset as people read it: the coin, or a token's id shortened.
const assetName = (asset) => (asset === "coin" ? "coin" : short(asset));
const amount = (side) => (side.asset === "coin" ? coins(side.amount) + " coin" : `${side.amount} ${assetName(side.asset)}`);
// An amount typed for `asset`: coins with decimals, or a token's whole base units.
function parseAmount(text, asset) {
  if (asset === "coin") return parseCoins(text);
  if (!/^\d{1,16}$/.test(text) || Number(text) === 0) throw new Error("a token amount is a whole number of base units");
  return Number(text);
}

function cell(row, value, className) {
  const td = document.createElement("td");
  if (value instanceof Node) td.appendChild(value); else td.textContent = value === undefined || value === null ? "" : String(value);
  if (className) td.className = className;
  row.appendChild(td);
}

function fill(id, head, rows) {
  const table = document.getElementById(id);
  table.replaceChildren();
  if (head) {
    const tr = document.createElement("tr");
    for (const title of head) { const th = document.createElement("th"); th.textContent = title; tr.appendChild(th); }
    table.appendChild(tr);
  }
  for (const values of rows) {
    const tr = document.createElement("tr");
    for (const v of values) Array.isArray(v) ? cell(tr, v[0], v[1]) : cell(tr, v);
    table.appendChild(tr);
  }
}

// A link into the explorer.
function link(text, route) {
  const a = document.createElement("a");
  a.href = "#/" + route;
  a.textContent = text;
  return a;
}

function failed(id, error) {
  fill(id, null, [[[error.message, "error"]]]);
}

// One refresh at a time: a push arriving during one asks for another after it.
let refreshing = null, again = false;
function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = refreshAll().finally(() => {
    refreshing = null;
    if (again) { again = false; refresh(); }
  });
  return refreshing;
}

async function refreshAll() {
  const jobs = [
    rpc("node.id").then((id) => {
      document.getElementById("identity").textContent =
        `${id.network} · peer ${short(id.peer_id)} · version ${id.version}`;
    }),
    rpc("chain.info").then((c) => fill("chain", null, [
      ["height", c.height],
      ["best block", [link(c.best_hash, "block/" + c.best_hash), "mono"]],
      ["block time", new Date(c.time * 1000).toLocaleString()],
      ["sync", c.syncing ? [`downloading: headers to ${c.headers}`, ""] : ["up to date", "ok"]],
      ["mempool", `${c.mempool_size} transactions, ${bytes(c.mempool_bytes)}`],
      ["peers", c.peers],
    ])).catch((e) => failed("chain", e)),
    rpc("wallet.balance").then((b) => fill("wallet", null, [
      ["confirmed", coins(b.confirmed)],
      ["unconfirmed", coins(b.unconfirmed)],
      ["immature", coins(b.immature)],
      ["scan", b.scanning ? "catching up" : ["up to date", "ok"]],
    ])).catch((e) => failed("wallet", e)),
    rpc("wallet.history", { limit: 10 }).then((h) => fill("history", ["txid", "kind", "amount", "confirmations"],
      h.map((t) => [[link(short(t.txid), "tx/" + t.txid), "mono"], t.category, coins(t.amount), t.confirmations]),
    )).catch((e) => failed("history", e)),
    rpc("node.peers").then((peers) => fill("peers", ["peer", "address", "direction", "ping", "agent"],
      peers.map((p) => [[short(p.peer_id), "mono"], [p.address, "mono"], p.direction,
        p.latency_ms === null ? "" : `${p.latency_ms.toFixed(1)} ms`, p.agent]),
    )).catch((e) => failed("peers", e)),
    rpc("token.list").then(async (tokens) => {
      const held = await rpc("token.balance").catch(() => ({}));
      fill("tokens", ["name", "asset", "supply", "decimals", "held"],
        tokens.map((t) => [t.name, [t.asset, "mono"], t.supply, t.decimals, held[t.asset] || 0]));
    }).catch((e) => failed("tokens", e)),
    rpc("market.book", { limit: 200 }).then((offers) => {
      // Depth: per pair, cheapest first, the amount offered up to each price.
      const depth = {};
      fill("book", ["pair", "gives", "wants", "price", "depth", "expires", "", ""], offers.map((o) => {
        const pair = `${assetName(o.give.asset)} → ${assetName(o.want.asset)}`;
        depth[pair] = (depth[pair] || 0) + o.give.amount;
        const take = document.createElement("button");
        take.textContent = "Take";
        take.type = "button";
        take.addEventListener("click", () =>
          act("take-result", "market.take", { offer_ids: [o.offer_id] }, (r) => `taken in ${r.txid}`));
        return [pair, amount(o.give), amount(o.want), o.price.toPrecision(6), depth[pair], o.expires_at,
          o.mine ? ["mine", "ok"] : (o.taken_by ? "being taken" : ""), o.taken_by ? "" : take];
      }));
    }).catch((e) => failed("book", e)),
    rpc("market.trades", { limit: 10 }).then((trades) => fill("trades", ["txid", "height", "gave", "got", "price"],
      trades.map((t) => [[link(short(t.txid), "tx/" + t.txid), "mono"], t.height, amount(t.give), amount(t.got), t.price.toPrecision(6)]),
    )).catch((e) => failed("trades", e)),
    rpc("escrow.list").then((escrows) => fill("escrows",
      ["escrow", "role", "state", "amount", "refundable at", ""], escrows.map((e) => [
        [short(e.escrow_id), "mono"], e.role, e.state, amount(e), e.refundable_at, escrowActions(e)]),
    )).catch((e) => failed("escrows", e)),
    rpc("loan.book").then((offers) => fill("loan-book",
      ["offer", "lends", "repay", "term", "collateral", "lender's record", ""], offers.map((o) => [
        [short(o.offer_id), "mono"], amount(o.give), amount(o.repay), o.term, amount(o.want),
        `${o.lender_record.lent} lent`, o.mine ? ["mine", "ok"] : button("Take", "loan-action", "loan.take",
          { offer_id: o.offer_id }, (r) => `loan ${r.loan_id}`)]),
    )).catch((e) => failed("loan-book", e)),
    rpc("loan.list").then((loans) => fill("loans",
      ["loan", "role", "state", "repay", "collateral", "due at", "other party's record", ""], loans.map((l) => [
        [short(l.id), "mono"], l.role, l.state, amount(l.repay), amount(l.collateral), l.due_at,
        l.counterparty ? `borrowed ${l.counterparty.record.borrowed}, repaid ${l.counterparty.record.repaid}, ` +
          `defaulted ${l.counterparty.record.defaulted}` : "", loanAction(l)]),
    )).catch((e) => failed("loans", e)),
    rpc("file.list").then((files) => fill("files", ["name", "size", "id", "verified"],
      files.map((f) => {
        const bar = document.createElement("progress");
        bar.max = Math.max(f.size, 1);
        bar.value = f.complete ? bar.max : f.verified_bytes;
        return [f.name, bytes(f.size), [short(f.id), "mono"], f.complete ? ["complete", "ok"] : bar];
      }),
    )).catch((e) => failed("files", e)),
  ];
  const status = document.getElementById("status");
  try {
    await Promise.all(jobs);
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "";
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

// Actions: each form calls one method and shows its answer or its error beside it.
const value = (id) => document.getElementById(id).value.trim();

function show(id, text, ok) {
  const output = document.getElementById(id);
  output.textContent = text;
  output.className = ok ? "ok" : "error";
}

async function act(output, method, params, describe) {
  show(output, "…", true);
  try {
    show(output, describe(await rpc(method, params)), true);
    refresh();
  } catch (e) {
    show(output, e.message, false);
  }
}

// A button calling one method; its answer shows in `output`.
function button(label, output, method, params, describe) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", () => act(output, method, params, describe));
  return b;
}

// The steps this wallet's role allows on an escrow in its state.
function escrowActions(e) {
  const span = document.createElement("span");
  const id = { escrow_id: e.escrow_id };
  const paid = (r) => `payout ${r.txid}`;
  const open = e.state === "open" || e.state === "disputed";
  if (e.role === "buyer" && open) {
    span.append(button("Release", "escrow-action", "escrow.release", id, paid), " ",
      button("Refund", "escrow-action", "escrow.refund", id, paid));
  }
  if (e.role !== "arbiter" && e.state === "open" && e.arbiter_key) {
    span.append(" ", button("Dispute", "escrow-action", "escrow.dispute", id, () => "the arbiter is told"));
  }
  if (e.role === "arbiter" && e.state === "disputed") {
    span.append(button("To buyer", "escrow-action", "escrow.resolve", { ...id, to: "buyer" }, paid), " ",
      button("To seller", "escrow-action", "escrow.resolve", { ...id, to: "seller" }, paid));
  }
  return span;
}

function loanAction(l) {
  if (l.role === "borrower" && (l.state === "active" || l.state === "defaulted")) {
    return button("Repay", "loan-action", "loan.repay", { loan_id: l.id }, (r) => `repaid in ${r.txid}`);
  }
  if (l.role === "lender" && l.state === "defaulted") {
    return button("Claim", "loan-action", "loan.claim", { loan_id: l.id }, (r) => `claimed in ${r.txid}`);
  }
  return "";
}

// Coins as typed ("12.5") to base units, without floating-point rounding.
function parseCoins(text) {
  const parts = /^(\d{1,8})(?:\.(\d{1,8}))?$/.exec(text);
  if (!parts) throw new Error("the amount must be coins, with at most 8 decimals (such as 12.5)");
  const units = Number(parts[1]) * COIN + Number((parts[2] || "").padEnd(8, "0"));
  if (!Number.isSafeInteger(units) || units === 0) throw new Error("the amount must be more than 0 and less than 90,000,000 coins");
  return units;
}

document.getElementById("send").addEventListener("submit", (event) => {
  event.preventDefault();
  let amount;
  try { amount = parseCoins(value("send-amount")); } catch (e) { return show("send-result", e.message, false); }
  const params = { address: value("send-to"), amount };
  if (value("send-passphrase")) params.passphrase = document.getElementById("send-passphrase").value;
  act("send-result", "wallet.send", params, (r) => `sent ${coins(amount)} in ${r.txid} (fee ${coins(r.fee)})`);
  document.getElementById("send-passphrase").value = "";
});
document.getElementById("receive").addEventListener("click", () =>
  act("receive-result", "wallet.address", { new: true }, (r) => {
    showQr("receive-qr", r.address);
    return r.address;
  }));

// A QR code of `text` (an address) drawn into the element `id`, for a phone to scan.
function showQr(id, text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const holder = document.getElementById(id);
  holder.innerHTML = qr.createSvgTag({ cellSize: 3, margin: 2, scalable: false });
  holder.firstElementChild.setAttribute("aria-label", "QR code of " + text);
  holder.dataset.text = text;
}

// Sharing a file picked in the browser: its bytes go to the node, which keeps a copy and
// shares it as `file add` does.
document.getElementById("upload").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = document.getElementById("upload-file").files[0];
  if (!file) return show("upload-result", "pick a file first", false);
  const bar = document.getElementById("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  show("upload-result", "uploading…", true);
  const request = new XMLHttpRequest();
  request.open("POST", location.origin + "/upload?name=" + encodeURIComponent(file.name));
  request.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  request.onload = () => {
    bar.hidden = true;
    if (request.status === 200) {
      const entry = JSON.parse(request.responseText);
      show("upload-result", `shared ${entry.name}: ${entry.id}`, true);
      refresh();
    } else {
      show("upload-result", request.responseText.trim() || `upload failed (${request.status})`, false);
    }
  };
  request.onerror = () => { bar.hidden = true; show("upload-result", "the upload was cut off", false); };
  request.send(file);
});
document.getElementById("get").addEventListener("submit", (event) => {
  event.preventDefault();
  // No path: the node's downloads folder.
  const params = value("get-path") ? { id: value("get-id"), path: value("get-path") } : { id: value("get-id") };
  act("get-result", "file.get", params, (d) => `${d.state}: ${d.path}`);
});
document.getElementById("add").addEventListener("submit", (event) => {
  event.preventDefault();
  act("add-result", "file.add", { path: value("add-path") }, (f) => `shared ${f.name}: ${f.id}`);
});

document.getElementById("issue").addEventListener("submit", (event) => {
  event.preventDefault();
  let supply;
  try { supply = parseAmount(value("issue-supply"), "token"); } catch (e) { return show("issue-result", e.message, false); }
  act("issue-result", "token.issue", { name: value("issue-name"), supply }, (r) => `issued ${r.asset} in ${r.txid}`);
});
document.getElementById("offer").addEventListener("submit", (event) => {
  event.preventDefault();
  const giveAsset = value("offer-give-asset"), wantAsset = value("offer-want-asset");
  let give, want;
  try {
    give = parseAmount(value("offer-give"), giveAsset);
    want = parseAmount(value("offer-want"), wantAsset);
  } catch (e) { return show("offer-result", e.message, false); }
  act("offer-result", "market.offer",
    { give_amount: give, give_asset: giveAsset, want_amount: want, want_asset: wantAsset },
    (r) => `offer ${r.offer_id}` + (r.funding_txid ? " (published once its coin confirms)" : ""));
});

document.getElementById("show-key").addEventListener("click", () =>
  act("key-result", "wallet.key", {}, (r) => r.key));
document.getElementById("escrow").addEventListener("submit", (event) => {
  event.preventDefault();
  let amount;
  try { amount = parseCoins(value("escrow-amount")); } catch (e) { return show("escrow-result", e.message, false); }
  const params = { seller_key: value("escrow-seller"), amount, timeout: Number(value("escrow-timeout")) };
  if (value("escrow-arbiter")) params.arbiter_key = value("escrow-arbiter");
  act("escrow-result", "escrow.open", params, (r) => `escrow ${r.escrow_id}`);
});
document.getElementById("loan").addEventListener("submit", (event) => {
  event.preventDefault();
  const asset = value("loan-asset"), collateralAsset = value("loan-collateral-asset");
  let params;
  try {
    params = {
      amount: parseAmount(value("loan-amount"), asset), asset,
      repay: parseAmount(value("loan-repay"), asset), term: Number(value("loan-term")),
      collateral_amount: parseAmount(value("loan-collateral"), collateralAsset), collateral_asset: collateralAsset,
    };
  } catch (e) { return show("loan-result", e.message, false); }
  act("loan-result", "loan.offer", params,
    (r) => `loan offer ${r.offer_id}` + (r.funding_txid ? " (published once its coin confirms)" : ""));
});

refresh();

// The web dashboard in a real browser (Debian's headless Chromium, driven by puppeteer-core):
// a regtest node with a wallet, three blocks and a shared file; the browser is sent to the
// login page, refused a wrong password, then logs in as a user does and must show the node's
// height, balance, payments and file, with no script error; the page must not poll, and a
// new block must show by the node's push; the block-interval chart must draw the chain's own
// intervals; the explorer's pages (latest blocks, block, transaction, address) link to each
// other and its search box finds each kind; then it pays through the send form (a bad amount
// refused first), makes a receiving address (with its QR code), shares a file by path and one
// by upload, and downloads one through the forms; trades on the Market page; opens and
// refunds an escrow and offers a loan on the Escrows and loans page; and logs out. Run by
// scripts/test:
//   node tests/browser/dashboard.mjs [path/to/peerchain]
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const binary = process.argv[2] || "target/debug/peerchain";
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium-headless-shell";
const dir = mkdtempSync(join(tmpdir(), "peerchain-dashboard-"));
// Files shared and downloaded live outside the data directory, which the node refuses to
// share or write into (it holds the wallet, the node key and the cookie).
const filesDir = mkdtempSync(join(tmpdir(), "peerchain-dashboard-files-"));
const base = ["--network", "regtest", "--data-dir", dir];
const cli = (...args) => JSON.parse(execFileSync(binary, [...base, ...args, "--json"], { encoding: "utf8" }));
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function fail(message) {
  throw new Error(message);
}

const node = spawn(binary, [...base, "node", "--rpc-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
  { stdio: ["ignore", "ignore", "pipe"] });
let nodeLog = "";
node.stderr.on("data", (chunk) => { nodeLog += chunk; });
let browser;
try {
  for (let i = 0; !existsSync(join(dir, "rpc.addr")); i++) {
    if (i > 300) fail("the node did not start:\n" + nodeLog);
    await sleep(100);
  }
  for (let i = 0; ; i++) {
    try { cli("chain", "info"); break; } catch (e) { if (i > 100) throw e; await sleep(100); }
  }
  cli("wallet", "create");
  cli("chain", "generate", "3");
  const shared = join(filesDir, "holiday-notes.txt");
  writeFileSync(shared, "what the dashboard shows\n");
  const file = cli("file", "add", shared);
  const login = cli("dashboard");

  browser = await puppeteer.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });

  // No login: the browser lands on the login page, which carries no script.
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // The wrong password's 401 is the one error a browser logs on its own.
    if (m.type() === "error" && !m.text().includes("401")) errors.push(m.text());
  });
  let rpcCalls = 0;
  page.on("request", (r) => { if (r.method() === "POST" && new URL(r.url()).pathname === "/") rpcCalls++; });
  const first = await page.goto(login.url);
  if (!page.url().endsWith("/login") || first.status() !== 200) fail(`without a login: ${first.status()} at ${page.url()}`);
  if ((await first.text()).includes("<script")) fail("the login page carries a script");
  const logIn = async (password) => {
    await page.type("#user", login.user);
    await page.type("#password", password);
    await Promise.all([page.waitForNavigation(), page.click("#login button")]);
  };
  await logIn("wrong");
  if (!(await page.content()).includes("Wrong user or password")) fail("a wrong password is not refused on the page");
  await page.screenshot({ path: join(tmpdir(), "peerchain-login.png") });
  await page.$eval("#user", (e) => { e.value = ""; });
  await logIn(login.password);
  if (new URL(page.url()).pathname !== "/") fail(`logged in, the browser is at ${page.url()}`);

  const text = (id) => page.$eval("#" + id, (e) => e.innerText);
  try {
    await page.waitForFunction(() => document.getElementById("chain").innerText.includes("height\t3"), { timeout: 20000 });
  } catch (e) {
    fail(`the dashboard never showed the chain: status "${await text("status")}", errors ${JSON.stringify(errors)}`);
  }
  const chain = await text("chain");
  const identity = await text("identity");
  const wallet = await text("wallet");
  const history = await text("history");
  const files = await text("files");
  const expect = (what, shown, wanted) => {
    if (!shown.includes(wanted)) fail(`${what} does not show "${wanted}":\n${shown}`);
  };
  expect("the chain panel", chain, "height\t3");
  expect("the chain panel", chain, cli("chain", "info").best_hash);
  expect("the header", identity, "regtest");
  // Three mined rewards, none mature yet on regtest.
  const balance = cli("wallet", "balance");
  expect("the wallet panel", wallet, "immature\t" + (balance.immature / 1e8).toFixed(8));
  expect("the payments panel", history, "mined");
  expect("the files panel", files, "holiday-notes.txt");
  expect("the files panel", files, "complete");
  if (errors.length) fail("script errors: " + JSON.stringify(errors));
  if (!file.id) fail("file add gave no id");

  // The page does not poll: with nothing happening it calls nothing, though the node's
  // samples keep coming; a new block shows by the node's push.
  await page.waitForFunction(() => window.liveEvents.sample >= 2, { timeout: 15000 })
    .catch(() => fail("no live samples arrive"));
  await sleep(1000);
  const callsBefore = rpcCalls;
  const samplesBefore = await page.evaluate(() => window.liveEvents.sample);
  await sleep(5000);
  if (rpcCalls !== callsBefore) fail(`an idle page made ${rpcCalls - callsBefore} API calls in 5 s: it polls`);
  if ((await page.evaluate(() => window.liveEvents.sample)) <= samplesBefore) fail("the samples stopped");
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("chain").innerText.includes("height\t4"), { timeout: 10000 })
    .catch(() => fail("a new block did not show"));
  if ((await page.evaluate(() => window.liveEvents.block)) < 1) fail("the block came without a push");

  // Actions, as a user fills the forms: coins mature after 10 blocks on regtest.
  cli("chain", "generate", "11");

  // The charts draw the chain's own figures: the seconds between its blocks, as the node
  // lists them, and the mempool and peers sampled over time.
  // (Block 1's interval, from the genesis block's fixed date, is left out.)
  const blocks = cli("chain", "blocks", "--limit", "100").reverse().filter((b) => b.interval !== null && b.height > 1);
  await page.waitForFunction((tip) => window.charts.intervals && window.charts.intervals.data[0].at(-1) === tip,
    { timeout: 15000 }, blocks.at(-1).height).catch(() => fail("the block-interval chart did not reach the tip"));
  const drawn = await page.evaluate(() => window.charts.intervals.data.map((series) => Array.from(series)));
  if (JSON.stringify(drawn) !== JSON.stringify([blocks.map((b) => b.height), blocks.map((b) => b.interval)])) {
    fail(`the block-interval chart does not draw the chain's intervals: ${JSON.stringify(drawn)}`);
  }
  const mempoolPoints = await page.evaluate(() => window.charts.mempool.data[0].length);
  if (mempoolPoints < 3) fail(`the mempool chart has ${mempoolPoints} samples`);
  if (!(await page.$("#chart-intervals canvas"))) fail("no canvas drawn for the block intervals");
  const fillIn = async (id, text) => {
    await page.$eval("#" + id, (e) => { e.value = ""; });
    await page.type("#" + id, text);
  };
  const answer = async (id, wanted) => {
    await page.waitForFunction((id) => { const o = document.getElementById(id); return o.textContent && o.textContent !== "…"; },
      { timeout: 15000 }, id).catch(() => fail(`#${id} never answered`));
    const shown = await page.$eval("#" + id, (e) => ({ text: e.textContent, ok: e.className === "ok" }));
    if (shown.ok !== wanted) fail(`#${id} shows "${shown.text}", ${wanted ? "not " : ""}an error`);
    return shown.text;
  };
  await page.click("#receive");
  const address = await answer("receive-result", true);
  const qr = await page.$eval("#receive-qr", (e) => ({ text: e.dataset.text, svg: Boolean(e.querySelector("svg rect, svg path")) }));
  if (qr.text !== address || !qr.svg) fail(`no QR code of the new address: ${JSON.stringify(qr)}`);
  const txids = () => cli("wallet", "history").map((t) => t.txid);
  const before = txids();
  // A bad amount is refused by the page and sends nothing.
  await fillIn("send-to", address);
  await fillIn("send-amount", "1.5 coins");
  await page.click("#send button");
  expect("a refused amount", await answer("send-result", false), "the amount must be coins");
  if (txids().length !== before.length) fail("a refused amount sent something");
  await fillIn("send-amount", "1.5");
  await page.click("#send button");
  const sent = await answer("send-result", true);
  expect("a payment", sent, "sent 1.50000000 in ");
  const txid = sent.split(" in ")[1].split(" ")[0];
  if (!txids().includes(txid)) fail(`the payment ${txid} is not in the wallet's history`);
  // A node's error comes back as it is: an address of nobody's network.
  await fillIn("send-to", "not-an-address");
  await page.click("#send button");
  await answer("send-result", false);

  // Share a file by its path on this machine, then download the first one to a new path.
  const another = join(filesDir, "recipes.txt");
  writeFileSync(another, "bread, soup\n");
  await fillIn("add-path", another);
  await page.click("#add button");
  expect("sharing", await answer("add-result", true), "shared recipes.txt");
  if (!cli("file", "list").some((f) => f.name === "recipes.txt")) fail("the shared file is not listed");
  const copy = join(filesDir, "copy-of-notes.txt");
  await fillIn("get-id", file.id);
  await fillIn("get-path", copy);
  await page.click("#get button");
  await answer("get-result", true);
  for (let i = 0; !existsSync(copy); i++) {
    if (i > 100) fail("the download never arrived");
    await sleep(100);
  }
  if (readFileSync(copy, "utf8") !== "what the dashboard shows\n") fail("the download differs");

  // Share a file picked in the browser: uploaded, kept and listed by the node.
  const picked = join(filesDir, "picked in the browser.txt");
  writeFileSync(picked, "sent by the upload form\n".repeat(1000));
  await (await page.$("#upload-file")).uploadFile(picked);
  await page.click("#upload button");
  await page.waitForFunction(() => document.getElementById("upload-result").textContent.startsWith("shared") ||
    document.getElementById("upload-result").className === "error", { timeout: 15000 });
  expect("an upload", await page.$eval("#upload-result", (e) => e.textContent), "shared picked in the browser.txt");
  const uploaded = cli("file", "list").find((f) => f.name === "picked in the browser.txt");
  if (!uploaded || uploaded.size !== 24000 || !uploaded.complete) fail("the uploaded file is not shared whole");

  // The Market page: issue a token, offer some of it for coins, take the offer from the book
  // (this wallet takes its own; any wallet may), and see the swap among the trades.
  await fillIn("issue-name", "acorns");
  await fillIn("issue-supply", "5000");
  await page.click("#issue button");
  const issued = await answer("issue-result", true);
  const asset = issued.split("issued ")[1].split(" ")[0];
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("tokens").innerText.includes("acorns"), { timeout: 10000 })
    .catch(() => fail("the issued token is not listed"));
  expect("the tokens panel", await text("tokens"), "5000");
  await fillIn("offer-give", "5000.5");
  await fillIn("offer-give-asset", asset);
  await fillIn("offer-want", "2");
  await fillIn("offer-want-asset", "coin");
  await page.click("#offer button");
  expect("a refused token amount", await answer("offer-result", false), "whole number of base units");
  await fillIn("offer-give", "1200");
  await page.click("#offer button");
  expect("an offer", await answer("offer-result", true), "offer ");
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("book").innerText.includes("mine"), { timeout: 15000 })
    .catch(() => fail("the offer never showed in the book"));
  expect("the book", await text("book"), "2.00000000 coin");
  await page.click("#book td button");
  const taken = await answer("take-result", true);
  const swap = taken.split("taken in ")[1];
  cli("chain", "generate", "1");
  await page.waitForFunction((swap) => document.getElementById("trades").innerText.includes(swap.slice(0, 10)),
    { timeout: 15000 }, swap).catch(() => fail("the swap is not among the trades"));
  if (!cli("market", "trades").some((t) => t.txid === swap)) fail("the node does not list the swap");

  // Escrows and loans: open an escrow (to this wallet's own key, as a seller would give it),
  // take it back after its timeout with the row's Refund button; offer a loan of the token.
  await page.click("#show-key");
  const key = await answer("key-result", true);
  await fillIn("escrow-seller", key);
  await fillIn("escrow-amount", "2");
  await fillIn("escrow-timeout", "1");
  await page.click("#escrow button");
  const escrowId = (await answer("escrow-result", true)).split("escrow ")[1];
  cli("chain", "generate", "2");
  await page.waitForFunction(() => document.getElementById("escrows").innerText.includes("open"), { timeout: 15000 })
    .catch(() => fail("the escrow is not listed as open"));
  const clickIn = (table, label) => page.$$eval(`#${table} button`, (buttons, label) => {
    const b = buttons.find((b) => b.textContent === label);
    if (b) b.click();
    return Boolean(b);
  }, label);
  if (!(await clickIn("escrows", "Refund"))) fail("no Refund button for the buyer");
  expect("a refund", await answer("escrow-action", true), "payout ");
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("escrows").innerText.includes("refunded"), { timeout: 15000 })
    .catch(() => fail("the escrow never showed as refunded"));
  if (cli("escrow", "list").find((e) => e.escrow_id === escrowId)?.state !== "refunded") fail("the node does not list it refunded");
  await fillIn("loan-amount", "100");
  await fillIn("loan-asset", asset);
  await fillIn("loan-repay", "110");
  await fillIn("loan-term", "20");
  await fillIn("loan-collateral", "1");
  await fillIn("loan-collateral-asset", "coin");
  await page.click("#loan button");
  expect("a loan offer", await answer("loan-result", true), "loan offer ");
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("loan-book").innerText.includes("mine"), { timeout: 15000 })
    .catch(() => fail("the loan offer never showed in the loan book"));
  expect("the loans panel", await text("loans"), "offered");
  // Every card fits its column at a 1400-pixel window: no table scrolls sideways.
  await new Promise((done) => setTimeout(done, 300));
  const wide = await page.$$eval("section", (sections) =>
    sections.filter((s) => s.scrollWidth > s.clientWidth + 1).map((s) => s.querySelector("h2")?.textContent));
  if (wide.length) fail("cards wider than their column at 1400 px: " + wide.join(", "));
  const shot = join(tmpdir(), "peerchain-dashboard.png");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(tmpdir(), "peerchain-overview.png") });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard screenshot: ${shot}`);

  // The explorer: latest blocks, a block, one of its transactions, an address it paid; each
  // page links to the next, and the search box finds each kind.
  const info = cli("chain", "info");
  const explorerText = () => text("explorer-page");
  // A page may be drawn again by a push while the test looks at it: the link is awaited, then
  // clicked where it is.
  const clickLink = async (href) => {
    await page.waitForFunction((href) => [...document.querySelectorAll("a")].some((a) => a.getAttribute("href") === href),
      { timeout: 10000 }, href).catch(() => fail(`no link to ${href}`));
    await page.$$eval("a", (links, href) => links.find((a) => a.getAttribute("href") === href).click(), href);
    await page.waitForFunction(() => !document.getElementById("explorer").hidden, { timeout: 10000 });
  };
  const showing = (what, wanted) => page.waitForFunction((wanted) =>
    document.getElementById("explorer-page").innerText.includes(wanted), { timeout: 10000 }, wanted)
    .catch(async () => fail(`the explorer's ${what} does not show "${wanted}":\n${await explorerText()}`));
  await page.click('nav a[href="#/explorer"]');
  await showing("latest blocks", info.best_hash);
  await clickLink("#/block/" + info.best_hash);
  await showing("block page", `Block ${info.height}`);
  const block = cli("chain", "block", String(info.height));
  const paid = block.tx.find((t) => !t.coinbase) || block.tx[0];
  await clickLink("#/tx/" + paid.txid);
  await showing("transaction page", paid.txid);
  const payee = paid.outputs.find((o) => o.lock.address).lock.address;
  await clickLink("#/address/" + payee);
  const indexed = cli("chain", "address", payee);
  await showing("address page", (indexed.balance / 1e8).toFixed(8) + " coin");
  if (!(await page.$("#address-qr svg"))) fail("the address page has no QR code");
  const explorerShot = join(tmpdir(), "peerchain-explorer.png");
  await page.screenshot({ path: explorerShot, fullPage: true });
  const search = async (query, wanted) => {
    await fillIn("search-text", query);
    await page.click("#search button");
    await showing(`search for ${query}`, wanted);
  };
  await search("2", "Block 2");
  await search(cli("chain", "block", "2").hash, "Block 2");
  await search(paid.txid, "Transaction");
  await search(payee, "Address");
  await search("0".repeat(64), "Not found");
  await page.click('nav a[href="#/"]');
  await page.waitForFunction(() => !document.getElementById("overview").hidden, { timeout: 5000 });
  if (errors.length) fail("script errors: " + JSON.stringify(errors));

  // Logging out ends the session: back to the login page, and the dashboard asks again.
  await Promise.all([page.waitForNavigation(), page.click("#logout button")]);
  if (!page.url().endsWith("/login")) fail(`logged out, the browser is at ${page.url()}`);
  await page.goto(login.url);
  if (!page.url().endsWith("/login")) fail("after logging out the dashboard opened without a login");
  console.log("dashboard browser test: passed");
} finally {
  if (browser) await browser.close();
  node.kill("SIGTERM");
  await new Promise((done) => node.once("exit", done));
  rmSync(dir, { recursive: true, force: true });
  rmSync(filesDir, { recursive: true, force: true });
}

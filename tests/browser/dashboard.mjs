// The web dashboard in a real browser (Debian's headless Chromium, driven by puppeteer-core):
// a regtest node with a wallet, three blocks and a shared file; the browser is refused
// without the login, then logs in as a user does at the prompt and must show the node's
// height, balance, payments and file, with no script error; then it pays through the send
// form (a bad amount refused first), makes a receiving address, shares a file and downloads
// one through the forms; trades on the Market page; opens and refunds an escrow and offers a
// loan on the Escrows and loans page. Run by scripts/test:
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

  // No login: the browser gets the challenge, and no page.
  const stranger = await browser.createBrowserContext();
  const refused = await (await stranger.newPage()).goto(login.url);
  if (refused.status() !== 401) fail(`without a login the dashboard answered ${refused.status()}`);
  if ((await refused.text()).includes("<script")) fail("the login challenge carries the page");
  await stranger.close();

  // Logged in, as a user answers the browser's prompt.
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.authenticate({ username: login.user, password: login.password });
  const response = await page.goto(login.url);
  if (response.status() !== 200) fail(`logged in, the dashboard answered ${response.status()}`);

  const text = (id) => page.$eval("#" + id, (e) => e.innerText);
  try {
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("updated"), { timeout: 20000 });
  } catch (e) {
    fail(`the dashboard never finished a refresh: status "${await text("status")}", errors ${JSON.stringify(errors)}`);
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

  // The page follows the node: a new block shows within a refresh or two.
  cli("chain", "generate", "1");
  await page.waitForFunction(() => document.getElementById("chain").innerText.includes("height\t4"), { timeout: 10000 })
    .catch(() => fail("a new block did not show"));

  // Actions, as a user fills the forms: coins mature after 10 blocks on regtest.
  cli("chain", "generate", "11");
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
  await page.setViewport({ width: 1400, height: 900 });
  await new Promise((done) => setTimeout(done, 300));
  const wide = await page.$$eval("section", (sections) =>
    sections.filter((s) => s.scrollWidth > s.clientWidth + 1).map((s) => s.querySelector("h2")?.textContent));
  if (wide.length) fail("cards wider than their column at 1400 px: " + wide.join(", "));
  const shot = join(tmpdir(), "peerchain-dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard screenshot: ${shot}`);
  if (errors.length) fail("script errors: " + JSON.stringify(errors));
  console.log("dashboard browser test: passed");
} finally {
  if (browser) await browser.close();
  node.kill("SIGTERM");
  await new Promise((done) => node.once("exit", done));
  rmSync(dir, { recursive: true, force: true });
  rmSync(filesDir, { recursive: true, force: true });
}

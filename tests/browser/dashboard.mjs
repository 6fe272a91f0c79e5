// The web dashboard in a real browser (Debian's headless Chromium, driven by puppeteer-core):
// a regtest node with a wallet, three blocks and a shared file; the browser is refused
// without the login, then logs in as a user does at the prompt and must show the node's
// height, balance, payments and file, with no script error. Run by scripts/test:
//   node tests/browser/dashboard.mjs [path/to/peerchain]
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const binary = process.argv[2] || "target/debug/peerchain";
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium-headless-shell";
const dir = mkdtempSync(join(tmpdir(), "peerchain-dashboard-"));
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
  const shared = join(dir, "holiday-notes.txt");
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
  console.log("dashboard browser test: passed");
} finally {
  if (browser) await browser.close();
  node.kill("SIGTERM");
  await new Promise((done) => node.once("exit", done));
  rmSync(dir, { recursive: true, force: true });
}

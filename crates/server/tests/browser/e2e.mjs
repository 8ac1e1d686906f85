// End-to-end test of the web UI in headless Chromium, driven by playwright-core.
// Started by crates/server/tests/browser.rs, which runs the server and passes (env):
//   BOURSE_URL        the server
//   BOURSE_MAILBOX    the directory the server writes mails to
//   BOURSE_USERS      JSON [{email, password}, {email, password}]: two verified, funded users
//   BOURSE_SHOTS      where to save screenshots
// Any browser console error or uncaught page error fails the test.
import { chromium } from "playwright-core";
import { existsSync, readdirSync, readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const url = process.env.BOURSE_URL;
const mailbox = process.env.BOURSE_MAILBOX;
const [alice, bob] = JSON.parse(process.env.BOURSE_USERS);
const shots = process.env.BOURSE_SHOTS;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
// Console errors a step expects (e.g. the 401 of a signed-out session); any other fails the test.
let expectedConsole = null;
const TIMEOUT = 10_000;

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => {
    if (m.type() === "error" && !(expectedConsole && expectedConsole.test(m.text()))) problems.push(`console: ${m.text()} (${page.url()})`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message} (${page.url()})`));
  return page;
}

function step(name) { console.log(`- ${name}`); }

async function login(page, user, next) {
  await page.goto(`${url}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("E-mail").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${url}${next}`);
  await page.getByText(user.email).waitFor();
}

async function place(page, side, price, quantity) {
  await page.getByLabel(side === "buy" ? "Buy" : "Sell", { exact: true }).check();
  await page.locator("#order-price").fill(price);
  await page.locator("#order-quantity").fill(quantity);
  await page.getByRole("button", { name: "Place order" }).click();
}

async function rows(page, selector) {
  return page.locator(`${selector} tr`).allInnerTexts();
}

// Every visible form control has an accessible name (a label, aria-label or its text).
async function assertLabelled(page) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea, button")]
    .filter((el) => el.type !== "hidden" && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.textContent.trim())
    .map((el) => el.outerHTML.slice(0, 80)));
  if (unlabelled.length) throw new Error(`unlabelled controls on ${page.url()}: ${unlabelled.join(", ")}`);
}

// The newest mail to `to`, once it contains `needle` (mail goes out through the outbox, a
// moment after the request that queued it).
async function mailWith(to, needle) {
  for (let i = 0; i < 200; i++) {
    const files = existsSync(mailbox) ? readdirSync(mailbox).sort().reverse() : [];
    const newest = files.map((f) => readFileSync(join(mailbox, f), "utf8")).find((m) => m.startsWith(`To: ${to}\n`));
    if (newest && newest.includes(needle)) return newest;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no mail to ${to} with ${needle}`);
}

// Nothing makes the page wider than the screen (wide tables scroll inside their box).
async function assertFits(page, width) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  if (scrollWidth > width) throw new Error(`${page.url()} is ${scrollWidth}px wide on a ${width}px screen`);
}

async function until(what, check) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  // Signup → mailed link → confirm → login, all through the pages.
  step("signup, confirm and log in through the pages");
  const carol = { email: "carol@example.com", password: "carol's long passphrase" };
  const page = await newPage();
  await page.goto(`${url}/signup`);
  await page.getByLabel("E-mail").fill(carol.email);
  await page.getByLabel(/^Password/).fill(carol.password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your e-mail" }).waitFor();
  const link = (await mailWith(carol.email, "/verify?token=")).split("\n").find((l) => l.includes("/verify?token=")).trim();
  await page.goto(link);
  await page.getByRole("button", { name: "Confirm my address" }).click();
  await page.getByRole("heading", { name: "Address confirmed" }).waitFor();
  await login(page, carol, "/");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("link", { name: "Log in" }).waitFor();

  step("a forgotten password is reset through the mailed link");
  await page.goto(`${url}/login`);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByLabel("E-mail").fill(carol.email);
  await page.getByRole("button", { name: "Mail me a link" }).click();
  await page.getByRole("heading", { name: "Check your e-mail" }).waitFor();
  const resetLink = (await mailWith(carol.email, "/reset?token=")).split("\n").find((l) => l.includes("/reset?token=")).trim();
  await page.goto(resetLink);
  carol.password = "carol's new passphrase";
  await page.getByLabel(/^New password/).fill(carol.password);
  await page.getByRole("button", { name: "Set the new password" }).click();
  await page.getByRole("heading", { name: "Password changed" }).waitFor();
  await login(page, carol, "/");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("link", { name: "Log in" }).waitFor();

  // Alice trades on BTC/USDT.
  step("an off-grid price is refused next to the field and places nothing");
  await login(page, alice, "/markets/BTC-USDT");
  await until("balances", async () => !(await page.locator('#balances [data-asset="USDT"]').innerText()).startsWith("–"));
  await place(page, "buy", "60000.001", "0.01");
  await until("the price error", async () => (await page.locator("#order-price-error").innerText()).length > 0);
  if ((await rows(page, "#open-orders")).length !== 0) throw new Error("an off-grid order was placed");

  step("a limit order rests: in the book and in open orders; then it is canceled");
  await place(page, "buy", "60000.00", "0.01");
  await until("the open order", async () => (await rows(page, "#open-orders")).some((r) => r.includes("60000")));
  await until("the bid in the book", async () => (await rows(page, "#bids")).some((r) => r.startsWith("60000")));
  await page.getByRole("button", { name: /^Cancel order/ }).click();
  await until("no open orders", async () => (await rows(page, "#open-orders")).length === 0);
  await until("the bid gone", async () => !(await rows(page, "#bids")).some((r) => r.startsWith("60000")));

  step("another user's crossing order fills it, and the first page updates live");
  await place(page, "buy", "60000.00", "0.01");
  await until("the open order", async () => (await rows(page, "#open-orders")).length === 1);
  const btcBefore = await page.locator('#balances [data-asset="BTC"]').innerText();
  const bobPage = await newPage();
  await login(bobPage, bob, "/markets/BTC-USDT");
  await place(bobPage, "sell", "60000.00", "0.01");
  await until("the trade on Alice's page", async () => (await rows(page, "#trades")).some((r) => r.startsWith("60000")));
  await until("Alice's fill", async () => (await rows(page, "#my-fills")).some((r) => r.includes("60000")));
  await until("no open orders", async () => (await rows(page, "#open-orders")).length === 0);
  await until("Alice's BTC balance", async () => (await page.locator('#balances [data-asset="BTC"]').innerText()) !== btcBefore);
  await until("the ticker", async () => (await page.locator('.market-head [data-field="last"]').innerText()) === "60000");
  await until("the chart's last candle", async () => (await page.locator("#chart").getAttribute("data-last")) === "60000");
  await until("the order history", async () => (await rows(page, "#order-history")).some((r) => r.includes("filled") && r.includes("limit")));
  await assertLabelled(page);

  step("the chart switches interval and shows the same trade");
  await page.getByRole("button", { name: "1h" }).click();
  await until("1h selected", async () => (await page.getByRole("button", { name: "1h" }).getAttribute("aria-pressed")) === "true");
  await until("the 1h candle", async () => (await page.locator("#chart").getAttribute("data-bars")) === "1");

  step("screenshots: desktop and phone, light and dark");
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
      const shot = await newPage({ viewport, colorScheme: scheme });
      for (const [pageName, path] of [["home", "/"], ["market", "/markets/BTC-USDT"], ["login", "/login"]]) {
        await shot.goto(url + path);
        await shot.getByText("live data: connected").or(shot.getByRole("heading", { name: "Log in" })).first().waitFor();
        await assertFits(shot, viewport.width);
        await shot.screenshot({ path: join(shots, `${pageName}-${name}-${scheme}.png`), fullPage: true });
      }
      await shot.context().close();
    }
  }
  // The logged-in market page too, and the security page.
  await page.screenshot({ path: join(shots, "market-desktop-logged-in.png"), fullPage: true });
  step("the security page lists this session");
  await page.getByRole("link", { name: "Security" }).click();
  await page.getByText("this session").waitFor();
  await assertLabelled(page);

  step("funds, orders and trades show the fill; the CSV downloads");
  await page.getByRole("link", { name: "Funds" }).click();
  await page.getByRole("heading", { name: "Balances" }).waitFor();
  const btcRow = await page.locator('#funds tr[data-asset="BTC"]').innerText();
  if (!btcRow.includes("0.01")) throw new Error(`funds: BTC row ${btcRow}`);
  await until("the ledger", async () => (await rows(page, "#ledger")).some((r) => r.includes("trade")));
  await assertLabelled(page);
  await page.getByRole("link", { name: "Orders", exact: true }).click();
  await until("the filled order", async () => (await rows(page, "#orders")).some((r) => r.includes("filled") && r.includes("60000")));
  await page.getByLabel("Market").selectOption("ETH-USDT");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/market=ETH-USDT/);
  await until("no ETH orders", async () => (await rows(page, "#orders")).every((r) => r.startsWith("No orders")));
  await page.getByRole("link", { name: "Trades", exact: true }).click();
  await until("the fill", async () => (await rows(page, "#fills")).some((r) => r.includes("60000")));
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download CSV" }).click()]);
  if (!/^bourse-trades-\d{4}-\d{2}-\d{2}\.csv$/.test(download.suggestedFilename())) throw new Error(`download ${download.suggestedFilename()}`);
  await assertLabelled(page);

  step("screenshots of the account and info pages: desktop and phone, light and dark");
  const session = await page.context().storageState();
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
      const shot = await newPage({ viewport, colorScheme: scheme, storageState: session });
      for (const [pageName, path, heading] of [["funds", "/account/funds", "Funds"], ["orders", "/account/orders", "Orders"],
        ["trades", "/account/trades", "Trades"], ["security", "/account/security", "Security"], ["status", "/status", "Status"],
        ["api", "/api", "bourse REST API"], ["fees", "/fees", "Fees"]]) {
        await shot.goto(url + path);
        await shot.getByRole("heading", { name: heading, exact: false }).first().waitFor();
        await assertFits(shot, viewport.width);
        await shot.screenshot({ path: join(shots, `${pageName}-${name}-${scheme}.png`), fullPage: pageName !== "api" });
      }
      await shot.context().close();
    }
  }

  step("a session signed out elsewhere sends the page to log in and back");
  await page.goto(`${url}/markets/BTC-USDT`);
  await until("balances", async () => !(await page.locator('#balances [data-asset="USDT"]').innerText()).startsWith("–"));
  const other = await newPage();
  await login(other, alice, "/account/security");
  await other.getByRole("button", { name: /^Sign out the session/ }).first().click();
  await other.waitForURL(`${url}/account/security`);
  expectedConsole = /status of 401/;
  await page.getByRole("button", { name: "Cancel all" }).click();
  await page.waitForURL(`${url}/login?next=%2Fmarkets%2FBTC-USDT`);
  expectedConsole = null;
  await login(page, alice, "/markets/BTC-USDT");
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("browser tests passed");

// The admin app in headless Chromium, driven by playwright-core: an operator logs in with a
// password and a TOTP code and approves the withdrawal waiting in review. Started by
// crates/server/tests/browser.rs, which passes (env):
//   BOURSE_ADMIN_URL   the admin app
//   BOURSE_ADMIN       JSON {email, password, secret}: the secret in base32
//   BOURSE_WITHDRAWAL  the id of the withdrawal in review
//   BOURSE_SHOTS       where to save screenshots
// Any browser console error or uncaught page error fails the test.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const url = process.env.BOURSE_ADMIN_URL;
const admin = JSON.parse(process.env.BOURSE_ADMIN);
const withdrawal = process.env.BOURSE_WITHDRAWAL;
const shots = process.env.BOURSE_SHOTS;
mkdirSync(shots, { recursive: true });

/// RFC 6238 (SHA-1, 30 s, 6 digits) of a base32 secret.
function totp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, "0");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
// Console errors a step expects (the 401 of a refused login); any other fails the test.
let expectedConsole = null;
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(10_000);
page.on("console", (m) => { if (m.type() === "error" && !(expectedConsole && expectedConsole.test(m.text()))) problems.push(`console: ${m.text()} (${page.url()})`); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message} (${page.url()})`));
function step(name) { console.log(`- ${name}`); }

try {
  step("a page of the admin app asks for a login first");
  await page.goto(`${url}/withdrawals`);
  await page.waitForURL(/\/login\?next=(%2F|\/)withdrawals$/);

  step("a wrong code is refused");
  expectedConsole = /status of 401/;
  await page.getByLabel("E-mail").fill(admin.email);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByLabel("Code from your authenticator app").fill(totp(admin.secret) === "000000" ? "111111" : "000000");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Wrong e-mail, password or code.").waitFor();

  step("the password and the current code log in, back to the queue");
  expectedConsole = null;
  await page.getByLabel("Password").fill(admin.password);
  await page.getByLabel("Code from your authenticator app").fill(totp(admin.secret));
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${url}/withdrawals`);
  const row = page.locator(`#withdrawal-${withdrawal}`);
  await row.waitFor();
  const text = await row.innerText();
  if (!text.includes("0.7") || !text.includes("0 of 1")) throw new Error(`the queue shows ${text}`);
  await page.screenshot({ path: join(shots, "admin-queue.png"), fullPage: true });

  step("approve it: it leaves the queue");
  await row.getByRole("button", { name: "Approve" }).click();
  await page.waitForURL(`${url}/withdrawals`);
  await page.getByText("No withdrawal waits for approval.").waitFor();

  step("the audit log shows the approval");
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.locator("#audit").getByText("withdrawal.approve").waitFor();
  await page.screenshot({ path: join(shots, "admin-audit.png"), fullPage: true });

  step("log out");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(`${url}/login`);
} catch (e) {
  await page.screenshot({ path: join(shots, "admin-failure.png"), fullPage: true }).catch(() => {});
  problems.push(`step failed: ${e.message}`);
}
await browser.close();
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("admin app: ok");

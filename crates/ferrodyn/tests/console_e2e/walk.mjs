// Walks through the Ferrodyn web console in headless Chromium (Debian's package) with
// playwright-core. Driven by crates/ferrodyn/tests/console.rs, which starts the server, checks
// the results with the AWS SDK and passes everything in the environment:
//   CONSOLE_URL       the server's base URL (http://127.0.0.1:PORT)
//   CHROMIUM          the Chromium binary
//   E2E_MODULES       the directory holding node_modules/playwright-core
//   SHOTS             where screenshots go (one PNG per page)
//   SCENARIO          build | teardown | auth
//   ADMIN_KEY, ADMIN_SECRET, DENIED_KEY, DENIED_SECRET (auth scenario)
// Prints one `STEP ...` line per step; on failure prints the step, the error, the page's
// console errors and a screenshot path, and exits 1.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = process.env;
const require = createRequire(join(env.E2E_MODULES, "package.json"));
const { chromium } = require("playwright-core");

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const XSS = '<img src=x onerror="window.__xss=1">';
const base = env.CONSOLE_URL.replace(/\/$/, "");
mkdirSync(env.SHOTS, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "ferrodyn-console-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM,
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 820 },
  deviceScaleFactor: 1,
  timeout: 30000,
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(10000);
const consoleErrors = [];
const pageErrors = [];
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));

let current = "start";
async function step(name, fn) {
  current = name;
  console.log(`STEP ${name}`);
  await fn();
}
async function shot(name) {
  // Let charts and fonts settle; the screenshot is of the viewport plus what scrolls.
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(env.SHOTS, `${name}.png`), fullPage: false });
}
function check(cond, message) {
  if (!cond) throw new Error(message);
}
async function text(selector) {
  return (await page.locator(selector).first().textContent()) || "";
}
async function open(hash) {
  await page.goto(`${base}/console/${hash}`);
  await page.waitForSelector(`body[data-page]`);
}
async function gotoPage(name, params = "") {
  await page.evaluate((h) => (location.hash = h), `#/${name}${params}`);
  await page.waitForSelector(`body[data-page="${name}"]`);
}
async function fillItem(json) {
  await page.fill("#item-json", typeof json === "string" ? json : JSON.stringify(json, null, 2));
}

const scenarios = {
  async build() {
    await step("open the console (no sign-in under --auth none)", async () => {
      await open("");
      await page.waitForSelector('body[data-auth="none"][data-page="tables"]');
      await page.getByText("No tables yet").waitFor();
    });
    await step("create a table with a GSI and a stream", async () => {
      await page.click("#create-table-open");
      await page.getByLabel("Table name").fill("Books");
      await page.locator('input[name="pk-name"]').fill("author");
      await page.locator('input[name="sk-name"]').fill("title");
      await page.getByLabel("Stream").selectOption("NEW_AND_OLD_IMAGES");
      await page.click("#add-gsi");
      await page.locator('input[name="gsi-index-name"]').fill("ByGenre");
      await page.locator('input[name="gsi-pk-name"]').fill("genre");
      await page.locator('input[name="gsi-sk-name"]').fill("year");
      await page.locator('select[name="gsi-sk-type"]').selectOption("N");
      await shot("create-table");
      await page.click('#create-table button[type="submit"]');
      const row = page.locator('#tables-list tr[data-table="Books"]');
      await row.waitFor();
      const rowText = await row.textContent();
      check(rowText.includes("ByGenre (GSI"), `the row names the GSI: ${rowText}`);
      check(rowText.includes("NEW_AND_OLD_IMAGES"), `the row shows the stream: ${rowText}`);
      check(rowText.includes("On-demand"), `the row shows the billing mode: ${rowText}`);
    });
    await step("create a provisioned table with a local index", async () => {
      await page.click("#create-table-open");
      await page.getByLabel("Table name").fill("Orders");
      await page.locator('input[name="pk-name"]').fill("customer");
      await page.locator('input[name="sk-name"]').fill("orderId");
      await page.getByLabel("Capacity mode").selectOption("PROVISIONED");
      await page.getByLabel("Read capacity units").fill("10");
      await page.getByLabel("Write capacity units").fill("4");
      await page.click("#add-lsi");
      await page.locator('input[name="lsi-index-name"]').fill("ByTotal");
      await page.locator('input[name="lsi-sk-name"]').fill("total");
      await page.locator('select[name="lsi-sk-type"]').selectOption("N");
      await page.locator('select[name="lsi-projection"]').selectOption("KEYS_ONLY");
      await page.click('#create-table button[type="submit"]');
      const row = page.locator('#tables-list tr[data-table="Orders"]');
      await row.waitFor();
      await page.evaluate(async () => {
        const api = await import("/console/js/api.js");
        await api.ddb("UpdateTimeToLive", { TableName: "Orders", TimeToLiveSpecification: { Enabled: true, AttributeName: "expiresAt" } });
      });
      await page.click('button:has-text("Refresh")');
      await page.waitForSelector('#tables-list tr[data-table="Orders"]:has-text("ENABLED (expiresAt)")');
      const rowText = await row.textContent();
      check(rowText.includes("ByTotal (LSI)"), `the row names the LSI: ${rowText}`);
      check(rowText.includes("Provisioned 10/4"), `the row shows the capacity: ${rowText}`);
    });
    await step("add items (DynamoDB JSON and plain JSON)", async () => {
      await page.click('#tables-list a:text("Books")');
      await page.waitForSelector('body[data-page="items"]');
      await page.waitForSelector("#results-status");
      await page.click("#new-item");
      await fillItem({
        author: { S: "Le Guin" },
        title: { S: "The Dispossessed" },
        genre: { S: "sf" },
        year: { N: "1974" },
        note: { S: XSS },
        tags: { SS: ["anarchy", "physics"] },
      });
      await page.click("#item-save");
      await page.waitForSelector('#items-results td[data-attr="title"]:has-text("The Dispossessed")');
      await page.click("#new-item");
      await page.selectOption("#item-format", "plain");
      await fillItem({ author: "Le Guin", title: "A Wizard of Earthsea", genre: "fantasy", year: 1968, rating: 4.5 });
      await page.click("#item-save");
      await page.waitForSelector('#items-results td[data-attr="title"]:has-text("A Wizard of Earthsea")');
    });
    await step("a validation error is shown inline with its type and message", async () => {
      await page.click("#new-item");
      await fillItem({ author: { S: "Nobody" } });
      await page.click("#item-save");
      const err = page.locator("#item-error .error");
      await err.waitFor();
      const t = await err.textContent();
      check(t.includes("ValidationException"), `error type shown: ${t}`);
      check(/key|Key/.test(t), `DynamoDB's message shown: ${t}`);
      await page.getByRole("button", { name: "Close" }).click();
    });
    await step("item data renders as text, never as HTML", async () => {
      const cell = page.locator('#items-results td[data-attr="note"] .cell');
      check((await cell.textContent()) === XSS, "the attribute's text is shown as is");
      check((await page.locator("#items-results img").count()) === 0, "no <img> element was created");
      check((await page.evaluate(() => window.__xss)) === undefined, "no handler ran");
      const types = await page.locator('#items-results td[data-attr="year"] .t').allTextContents();
      check(types.every((t) => t === "N"), `year cells typed N: ${types}`);
    });
    await step("query the table by key condition", async () => {
      await page.selectOption("#op", "Query");
      await page.fill("#pk-value", "Le Guin");
      await page.selectOption("#sk-op", "begins_with");
      await page.fill("#sk-value", "The");
      await page.click("#run");
      await page.waitForSelector('#results-status:has-text("1 item")');
      check((await text("#items-results tbody")).includes("The Dispossessed"), "the query found the item");
    });
    await step("query the GSI backwards", async () => {
      await page.selectOption("#index", "ByGenre");
      await page.fill("#pk-value", "sf");
      await page.check("#backward");
      await page.click("#run");
      await page.waitForSelector('#results-status:has-text("1 item")');
      check((await text("#items-results tbody")).includes("1974"), "the GSI query found the item");
      await shot("items");
    });
    await step("edit the item", async () => {
      await page.click('#items-results button:has-text("Edit")');
      await page.waitForSelector("#item-editor");
      const item = JSON.parse(await page.inputValue("#item-json"));
      item.year = { N: "1975" };
      item.edited = { BOOL: true };
      await fillItem(item);
      await shot("item-editor");
      await page.click("#item-save");
      await page.waitForSelector('#items-results td[data-attr="year"]:has-text("1975")');
    });
    await step("run a PartiQL statement", async () => {
      await gotoPage("partiql");
      await page.fill("#statement", `SELECT * FROM "Books" WHERE author = 'Le Guin'`);
      await page.click("#partiql-run");
      await page.waitForSelector('#partiql-status:has-text("2 items")');
      await page.fill("#statement", `SELECT * FROM "Nope"`);
      await page.click("#partiql-run");
      await page.waitForSelector('#partiql-error .error:has-text("ResourceNotFoundException")');
      await page.fill("#statement", `SELECT title, year FROM "Books" WHERE author = ?`);
      await page.fill("#parameters", '[{"S": "Le Guin"}]');
      await page.click("#partiql-run");
      await page.waitForSelector('#partiql-status:has-text("2 items")');
      await shot("partiql");
    });
    await step("the stream viewer lists the changes", async () => {
      await gotoPage("streams", "?table=Books");
      await page.waitForSelector("#stream-status");
      const events = await page.locator(".stream-records tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.event));
      check(events.filter((e) => e === "INSERT").length === 2, `two INSERT records: ${events}`);
      check(events.filter((e) => e === "MODIFY").length === 1, `one MODIFY record: ${events}`);
      check((await text(".stream-records")).includes("year=1975"), "the new image is shown");
      await shot("streams");
    });
    await step("the metrics charts move after traffic", async () => {
      await gotoPage("metrics");
      await page.waitForSelector("#metric-requests");
      const before = Number(await text("#metric-requests"));
      // About four seconds of traffic in the page, so that several polls see it; the
      // screenshot is taken while it runs.
      await page.evaluate(() => {
        window.__traffic = (async () => {
          const api = await import("/console/js/api.js");
          const key = { author: { S: "Le Guin" }, title: { S: "The Dispossessed" } };
          const end = Date.now() + 4000;
          for (let i = 0; i < 40 || Date.now() < end; i++) {
            await api.ddb("GetItem", { TableName: "Books", Key: key });
            if (i % 20 === 0) await api.ddb("GetItem", { TableName: "Missing", Key: { k: { S: "x" } } }).catch(() => {});
            if (i >= 40) await new Promise((r) => setTimeout(r, 5));
          }
        })();
      });
      await page.waitForFunction((n) => Number(document.querySelector("#metric-requests")?.textContent) >= n, before + 42, { timeout: 15000 });
      await page.waitForFunction(() => Number(document.querySelector("#chart-rate")?.dataset.peak) > 0, null, { timeout: 15000 });
      await page.waitForFunction(() => Number(document.querySelector("#chart-latency")?.dataset.peak) > 0, null, { timeout: 15000 });
      await page.waitForFunction(() => Number(document.querySelector("#chart-errors")?.dataset.peak) > 0, null, { timeout: 15000 });
      await page.waitForFunction(() => Number(document.querySelector("#chart-rate")?.dataset.points) >= 3, null, { timeout: 15000 });
      check((await text("#errors-by-op")).includes("ResourceNotFoundException"), "errors by operation listed");
      await shot("metrics");
      await page.evaluate(() => window.__traffic);
    });
    await step("the tables page shows the item count", async () => {
      await gotoPage("tables");
      const row = page.locator('#tables-list tr[data-table="Books"]');
      await row.waitFor();
      const cells = await row.locator("td").allTextContents();
      check(cells[1] === "2", `ItemCount shown: ${cells}`);
      await shot("tables");
    });
  },

  async teardown() {
    await step("delete the table after confirming its name", async () => {
      await open("#/tables");
      const row = page.locator('#tables-list tr[data-table="Books"]');
      await row.waitFor();
      await row.getByRole("button", { name: "Delete table Books" }).click();
      const confirm = page.locator('#delete-dialog button[type="submit"]');
      check(await confirm.isDisabled(), "delete is disabled until the name is typed");
      await page.locator("#delete-dialog input").fill("Book");
      check(await confirm.isDisabled(), "a wrong name keeps it disabled");
      await page.locator("#delete-dialog input").fill("Books");
      await shot("delete-table");
      await confirm.click();
      await page.locator('#tables-list tr[data-table="Books"]').waitFor({ state: "detached" });
      await page.locator('#tables-list tr[data-table="Orders"]').waitFor();
    });
  },

  async auth() {
    await step("the console asks for a key when keys are enforced", async () => {
      await open("");
      await page.waitForSelector('body[data-auth="keys"][data-page="signin"]');
      await shot("signin");
    });
    await step("a wrong secret is refused inline", async () => {
      await page.getByLabel("Access key id").fill(env.ADMIN_KEY);
      await page.getByLabel("Secret access key").fill("not-the-secret");
      await page.click('button:has-text("Sign in")');
      const err = page.locator(".signin .error");
      await err.waitFor();
      const t = await err.textContent();
      check(t.includes("InvalidSignatureException"), `signature error shown: ${t}`);
      check((await page.evaluate(() => sessionStorage.length)) === 0, "nothing stored after a refusal");
    });
    await step("sign in with a key whose policy denies PutItem", async () => {
      await page.getByLabel("Access key id").fill(env.DENIED_KEY);
      await page.getByLabel("Secret access key").fill(env.DENIED_SECRET);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('body[data-page="tables"]');
      await page.locator('#tables-list tr[data-table="Notes"]').waitFor();
      check((await text("#session")).includes(env.DENIED_KEY), "the header names the key");
      check(!page.url().includes(env.DENIED_SECRET), "the secret is not in the URL");
      check((await page.evaluate(() => localStorage.length)) === 0, "nothing in localStorage");
    });
    await step("PutItem denied by policy is shown inline", async () => {
      await gotoPage("items", "?table=Notes");
      await page.waitForSelector("#results-status");
      await page.click("#new-item");
      await fillItem({ id: { S: "denied" }, body: { S: "should not be written" } });
      await page.click("#item-save");
      const err = page.locator("#item-error .error");
      await err.waitFor();
      const t = await err.textContent();
      check(t.includes("AccessDeniedException"), `access denied shown: ${t}`);
      check(t.includes("dynamodb:PutItem"), `the message names the action: ${t}`);
      await shot("access-denied");
    });
    await step("sign out and in again with a key allowed to write", async () => {
      await page.click('#session button:has-text("Sign out")');
      await page.waitForSelector('body[data-page="signin"]');
      check((await page.evaluate(() => sessionStorage.length)) === 0, "sign-out clears the session");
      await page.getByLabel("Access key id").fill(env.ADMIN_KEY);
      await page.getByLabel("Secret access key").fill(env.ADMIN_SECRET);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('body[data-page="tables"]');
      await gotoPage("items", "?table=Notes");
      await page.waitForSelector("#results-status");
      await page.click("#new-item");
      await page.selectOption("#item-format", "plain");
      await fillItem({ id: "allowed", body: "written from the console" });
      await page.click("#item-save");
      await page.waitForSelector('#items-results td[data-attr="id"]:has-text("allowed")');
    });
    await step("signed metrics scrape", async () => {
      await gotoPage("metrics");
      await page.waitForSelector("#metric-requests");
      check((await page.locator("#metrics-error .error").count()) === 0, "the signed scrape is authorized");
    });
  },
};

let failed = null;
try {
  const scenario = scenarios[env.SCENARIO];
  check(scenario, `unknown SCENARIO ${env.SCENARIO}`);
  await scenario();
  const csp = consoleErrors.filter((e) => /Content Security Policy|Refused to/.test(e));
  check(csp.length === 0, `CSP violations: ${csp.join("\n")}`);
  check(pageErrors.length === 0, `uncaught page errors: ${pageErrors.join("\n")}`);
} catch (e) {
  failed = e;
}
if (failed) {
  const path = join(env.SHOTS, `failed-${env.SCENARIO}.png`);
  await page.screenshot({ path, fullPage: true }).catch(() => {});
  console.log(`FAILED at step: ${current}`);
  console.log(String(failed && failed.stack ? failed.stack : failed));
  console.log(`page URL: ${page.url()}`);
  console.log(`console errors:\n  ${consoleErrors.join("\n  ") || "(none)"}`);
  console.log(`page errors:\n  ${pageErrors.join("\n  ") || "(none)"}`);
  console.log(`screenshot: ${path}`);
}
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(failed ? "RESULT failed" : "RESULT ok");
process.exit(failed ? 1 : 0);

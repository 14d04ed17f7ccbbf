/**
 * The inspector page in a real browser: Debian's Chromium (never a downloaded one), driven by
 * playwright-core, against the demo (`examples/server.ts`) run as a real process. Work of every
 * kind is produced over HTTP and the test asserts what the page shows: tasks appearing with the
 * request they came from and then leaving, the daemons and schedules with a schedule's failure
 * cause, the offload pool busy, dead durable tasks retried (dead → pending → done) and discarded
 * from the page's buttons, nothing at all without the token, and the drain phase while the server
 * drains. Every wait is on the page's content (upper bounds, not thresholds).
 *
 * INSPECTOR_SCREENSHOT=docs/images/inspector.png saves a screenshot of the page with data.
 */
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { describe, expect, it } from "vitest"
import { Inspector, InvalidOptionError } from "../src/index.js"
import { exampleTest, expectCleanExit, request, type RunningExample } from "./support/process-example.js"

const executablePath = "/usr/bin/chromium"
const hasChromium = existsSync(executablePath)
if (!hasChromium) {
  process.stdout.write(`test/inspector.test.ts skipped: ${executablePath} is missing (apt-get install chromium)\n`)
}

/** How long the page may take to show something on a loaded 2-core machine (an upper bound). */
const patience = 60_000
const token = "inspector-test-token"

/** A fresh browser with a user-data directory of its own, removed afterwards. */
const withBrowser = async (use: (context: BrowserContext) => Promise<void>): Promise<void> => {
  const userDataDir = await mkdtemp(join(tmpdir(), "effect-background-chromium-"))
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run"
    ]
  })
  try {
    await use(context)
  } finally {
    await context.close()
    await rm(userDataDir, { recursive: true, force: true })
  }
}

/** The text of the page's rows in the table `id`, one string per row. */
const rowsOf = (page: Page, id: string): Promise<Array<string>> =>
  page.$$eval(`#${id} tbody tr`, (rows) => rows.map((row) => row.textContent ?? ""))

/** Waits until `predicate` holds of the rows of table `id`. */
const waitForRows = async (
  page: Page,
  id: string,
  predicate: (rows: ReadonlyArray<string>) => boolean,
  what: string
): Promise<ReadonlyArray<string>> => {
  const deadline = Date.now() + patience
  for (;;) {
    const rows = await rowsOf(page, id)
    if (predicate(rows)) return rows
    if (Date.now() > deadline) throw new Error(`the page never showed ${what}; #${id} has ${JSON.stringify(rows)}`)
    await page.waitForTimeout(100)
  }
}

/** Waits until the text of the element `selector` passes `test`. */
const waitForText = async (page: Page, selector: string, test: (text: string) => boolean, what: string): Promise<string> => {
  const deadline = Date.now() + patience
  for (;;) {
    const text = (await page.textContent(selector)) ?? ""
    if (test(text)) return text
    if (Date.now() > deadline) throw new Error(`the page never showed ${what}; ${selector} says ${JSON.stringify(text)}`)
    await page.waitForTimeout(100)
  }
}

/** Waits until the offload table shows `busy` threads busy. */
const waitForBusy = async (page: Page, busy: number): Promise<void> => {
  const deadline = Date.now() + patience
  for (;;) {
    const cells = await page.$$eval("#offload-stats tbody td", (tds) => tds.map((td) => td.textContent ?? ""))
    if (cells[1] === String(busy)) return
    if (Date.now() > deadline) throw new Error(`the page never showed ${busy} busy thread(s); it shows ${JSON.stringify(cells)}`)
    await page.waitForTimeout(100)
  }
}

/** Polls a durable task's state through the demo's own route until it is `state` (404: "gone"). */
const waitForDurableState = async (app: RunningExample, id: string, state: string): Promise<void> => {
  const deadline = Date.now() + patience
  for (;;) {
    const response = await request(app.port, "GET", `/durable/tasks/${id}`)
    const now = response.status === 404 ? "gone" : (JSON.parse(response.body) as { state: string }).state
    if (now === state) return
    if (Date.now() > deadline) throw new Error(`durable task ${id} is ${now}, never ${state}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe("Inspector.router's options", () => {
  it("refuses an empty token and a path it cannot mount, at once and together", () => {
    const refused = (() => {
      try {
        Inspector.router({ path: "/inspector/" as `/${string}`, token: "" })
      } catch (error) {
        return error
      }
    })()
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect((refused as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["path", "token"])
    expect(() => Inspector.router({ path: "/admin/background", token: "s3cret" })).not.toThrow()
    expect(() => Inspector.router()).not.toThrow()
  })
})

describe.skipIf(!hasChromium)("the inspector page, in Chromium", () => {
  exampleTest("shows the demo's work live, acts on dead durable tasks with the token, shows nothing without it, and keeps going while the server drains", async ({ examples }) => {
    const app = await examples.start("server", {
      INSPECTOR_TOKEN: token,
      // after-response tasks and forks take this long: long enough to be seen, then they leave
      TASK_DELAY_MS: "2500",
      REFRESH_MS: "500",
      REFRESH_FAILURES: "1",
      // two webhook deliveries, two attempts each: both end dead
      WEBHOOK_FAILURES: "4",
      INTERVAL_MS: "60000",
      DRAIN_MS: "30000"
    })
    expect(app.stdout).toContain(`inspector: http://127.0.0.1:${app.port}/inspector#token=${token}`)
    const base = `http://127.0.0.1:${app.port}/inspector`

    // The data is behind the token.
    expect((await request(app.port, "GET", "/inspector/api/state")).status).toBe(401)
    expect((await request(app.port, "GET", "/inspector/api/stream")).status).toBe(401)
    expect((await request(app.port, "POST", "/inspector/api/durable/x/retry")).status).toBe(401)

    await withBrowser(async (context) => {
      // Without the token the page asks for it and shows no data at all.
      const anonymous = await context.newPage()
      await anonymous.goto(base)
      await waitForText(anonymous, "#notice", (text) => text.includes("needs the inspector's token"), "the token prompt")
      expect(await anonymous.locator("#data").isHidden()).toBe(true)
      expect(await anonymous.locator("#auth").isVisible()).toBe(true)
      expect(await anonymous.locator("tbody tr").count()).toBe(0)
      // A wrong token is refused the same way.
      await anonymous.fill("#token", "not-the-token")
      await anonymous.click("#auth button")
      await waitForText(anonymous, "#notice", (text) => text.includes("token was refused"), "the refusal")
      expect(await anonymous.locator("tbody tr").count()).toBe(0)
      await anonymous.close()

      // With the token (from the URL's fragment, which the page then takes out of the address bar).
      const page = await context.newPage()
      await page.goto(`${base}#token=${token}`)
      await waitForText(page, "#connection", (text) => text === "live", "a live connection")
      expect(page.url()).toBe(base)
      expect(await page.textContent("#phase")).toBe("serving")

      // Daemons and schedules, with the schedule's failure rendered by Cause.pretty.
      const jobs = await waitForRows(
        page,
        "jobs",
        (rows) => rows.some((row) => row.startsWith("refresh-cacheschedule") && row.includes("CacheSourceError: cache source unavailable (503)")),
        "refresh-cache's failure"
      )
      expect(jobs.some((row) => row.startsWith("hellodaemonrunning"))).toBe(true)
      expect(jobs.some((row) => row.startsWith("minute-reportscheduleidlein "))).toBe(true)
      expect(jobs.some((row) => row.startsWith("durable send-notificationdaemon"))).toBe(true)
      expect(jobs.some((row) => row.startsWith("durable deliver-webhookdaemon"))).toBe(true)

      // Two webhook deliveries fail until they are dead.
      const deadIds: Array<string> = []
      for (let i = 0; i < 2; i++) {
        const enqueued = await request(app.port, "POST", "/durable/webhook")
        expect(enqueued.status).toBe(202)
        deadIds.push((JSON.parse(enqueued.body) as { id: string }).id)
      }
      await waitForRows(page, "dead", (rows) => deadIds.every((id) => rows.some((row) => row.startsWith(id))), "both dead webhooks")
      const dead = await rowsOf(page, "dead")
      expect(dead.every((row) => row.includes("WebhookRefusedError: the receiver answered 502 Bad Gateway"))).toBe(true)
      await waitForRows(page, "durable-counts", (rows) => rows.some((row) => row === "deliver-webhook00002"), "deliver-webhook's counts")

      // Work in flight: an after-response task, a fork, and a task on a worker thread.
      expect((await request(app.port, "POST", "/send-notification/ada@example.com")).status).toBe(200)
      expect((await request(app.port, "POST", "/track")).status).toBe(202)
      const cpu = request(app.port, "GET", "/cpu?n=150000000")
      const tasks = await waitForRows(
        page,
        "tasks",
        (rows) =>
          rows.some((row) => row.includes("after-response") && row.endsWith("POST /send-notification/:email")) &&
          rows.some((row) => row.startsWith("analytics #1task") && row.endsWith("POST /track")),
        "the notification and the fork"
      )
      // The request is shown by its route's pattern, never by its URL.
      expect(tasks.join("\n")).not.toContain("ada@example.com")
      await waitForBusy(page, 1)

      const screenshot = process.env.INSPECTOR_SCREENSHOT
      if (screenshot !== undefined && screenshot !== "") {
        await mkdir(dirname(screenshot), { recursive: true })
        await page.screenshot({ path: screenshot, fullPage: true })
      }

      // Finished tasks leave the page; the thread is idle again once its answer is in.
      await waitForRows(page, "tasks", (rows) => rows.length === 1 && rows[0] === "no task", "the tasks leaving")
      expect((await cpu).status).toBe(200)
      await waitForBusy(page, 0)

      // The same work, as the demo's Prometheus route (Telemetry.prometheusRoute, behind the same
      // token) counts it: the notification ran, the webhooks' four attempts failed.
      expect((await request(app.port, "GET", "/metrics")).status).toBe(401)
      const scrape = await request(app.port, "GET", "/metrics", { headers: { authorization: `Bearer ${token}` } })
      expect(scrape.status).toBe(200)
      const sample = (name: string, labels: Record<string, string>) =>
        scrape.body.split("\n").filter((line) =>
          line.startsWith(`${name}{`) && Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))
        ).reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)
      expect(sample("effect_background_tasks_finished_total", { kind: "after-response" })).toBeGreaterThanOrEqual(1)
      expect(sample("effect_background_tasks_failed_total", { kind: "durable", name: "deliver-webhook" })).toBe(4)

      // Retry now: the dead task is pending again, leaves the dead list, and runs (the receiver
      // has stopped refusing).
      const [retried, discarded] = deadIds as [string, string]
      await page.click(`#dead tr[data-id="${retried}"] button.retry`)
      await waitForText(page, "#message", (text) => text === `retried ${retried}: now pending`, "the retry's outcome")
      await waitForRows(page, "dead", (rows) => !rows.some((row) => row.startsWith(retried)), "the retried task leaving the dead list")
      await waitForDurableState(app, retried, "done")
      await app.waitForLog((lines) => lines.includes("webhook order.paid delivered"))

      // Discard: the other one is gone from the page and from the store.
      await page.click(`#dead tr[data-id="${discarded}"] button.discard`)
      await waitForText(page, "#message", (text) => text === `discarded ${discarded}`, "the discard's outcome")
      await waitForRows(page, "dead", (rows) => rows.length === 1 && rows[0] === "no dead task", "the dead list empty")
      await waitForDurableState(app, discarded, "gone")

      // Shutdown: while a slow request holds the drain, the page goes on showing it (its own
      // stream does not hold the drain), then says the server has stopped serving.
      const slow = request(app.port, "GET", "/slow?ms=3000")
      await app.waitForLine(/slow request: answering in 3000ms/)
      app.signal("SIGTERM")
      await waitForText(page, "#phase", (text) => text === "draining", "the drain phase")
      await waitForText(page, "#shutdown-text", (text) => text.includes("1 request(s) in flight"), "the request holding the drain")
      expect((await slow).status).toBe(200)
      const report = await expectCleanExit(app)
      // The page's stream was neither waited for nor counted: the one request drained is /slow.
      expect(report).toContain("requests drained=1 interrupted=0")
      await waitForText(page, "#connection", (text) => text.includes("the server has stopped serving"), "the end of the drain")
    })
  }, 300_000)
})

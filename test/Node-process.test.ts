/**
 * The Promise API as a real process: test/fixtures/node-server.ts (a node:http server on
 * `Node.make` with `Node.handleSignals`) run with `node --import tsx`, sent real signals or killed
 * with SIGKILL, and judged from the outside — its answers, its log file, its exit code, its stderr
 * and its report line. Waits are upper bounds for "eventually", never timing thresholds.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, ManagedRuntime } from "effect"
import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { describe, expect } from "vitest"
import * as Durable from "../src/Durable.js"
import { fixtureTest as test } from "./reliability/support/fixture-process.js"
import { expectCleanExit, request, waitUntilRefusing } from "./support/process-example.js"
import { postgresAvailable, postgresUrl, uniqueTable } from "./support/postgres.js"

describe.concurrent("Node.handleSignals", () => {
  test("SIGTERM while an after-response task runs: the server drains, the task finishes within the grace, the report is printed, exit 0", async ({ fixtures }) => {
    const server = await fixtures.start("node-server")
    expect((await request(server.port, "POST", "/work/a")).status).toBe(200)
    await server.waitForLog((lines) => lines.includes("started a"))
    server.signal("SIGTERM")
    // the listener is closed: the drain has begun, and the task is still running
    await waitUntilRefusing(server.port)
    expect(await server.logLines()).toEqual(["started a"])
    writeFileSync(`${server.logFile}.release`, "")
    const report = await expectCleanExit(server)
    expect(await server.logLines()).toEqual(["started a", "done a"])
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0")
    expect(server.stderr).not.toContain("shutdown aborted")
  })

  test("a task that honours its signal is interrupted past the grace; one that ignores it is named as still running, exit 1", async ({ fixtures }) => {
    const polite = await fixtures.start("node-server", { GRACE_MS: "0" })
    expect((await request(polite.port, "POST", "/work/p")).status).toBe(200)
    await polite.waitForLog((lines) => lines.includes("started p"))
    polite.signal("SIGTERM")
    const report = await expectCleanExit(polite)
    expect(await polite.logLines()).toEqual(["started p", "aborted p"])
    expect(report).toContain("tasks finished=0 failed=0 interrupted=1")

    const stubborn = await fixtures.start("node-server", { GRACE_MS: "0", INTERRUPT_MS: "0", IGNORE_SIGNAL: "1" })
    expect((await request(stubborn.port, "POST", "/work/s")).status).toBe(200)
    await stubborn.waitForLog((lines) => lines.includes("started s"))
    stubborn.signal("SIGTERM")
    const exit = await stubborn.waitForExit()
    expect(exit.code, stubborn.output()).toBe(1)
    expect(stubborn.report(), stubborn.output()).toContain("still running: work s")
  })

  test("a second signal during the grace exits at once with 1, naming the task still running", async ({ fixtures }) => {
    // Grace far beyond the test: only the second signal can end this process.
    const server = await fixtures.start("node-server", { GRACE_MS: "600000" })
    expect((await request(server.port, "POST", "/work/b")).status).toBe(200)
    await server.waitForLog((lines) => lines.includes("started b"))
    server.signal("SIGTERM")
    await waitUntilRefusing(server.port)
    server.signal("SIGINT")
    const exit = await server.waitForExit()
    expect(exit.code, server.output()).toBe(1)
    expect(exit.stderr).toMatch(/shutdown aborted \(second signal SIGINT\); still running: .*work b/)
    expect(server.report()).toBeUndefined()
    expect(await server.logLines()).toEqual(["started b"])
  })

  test("past the hard deadline the process exits 1 at once, naming the task still running", async ({ fixtures }) => {
    const server = await fixtures.start("node-server", { GRACE_MS: "600000", HARD_DEADLINE_MS: "500" })
    expect((await request(server.port, "POST", "/work/c")).status).toBe(200)
    await server.waitForLog((lines) => lines.includes("started c"))
    server.signal("SIGTERM")
    const exit = await server.waitForExit()
    expect(exit.code, server.output()).toBe(1)
    expect(exit.stderr).toMatch(/shutdown aborted \(hard deadline of 500ms passed\); still running: .*work c/)
    expect(server.report()).toBeUndefined()
  })
})

/** Drops a test's PostgreSQL table. */
const dropTable = async (table: string): Promise<void> => {
  const runtime = ManagedRuntime.make(Layer.orDie(Durable.postgres({ url: postgresUrl, table, maxConnections: 1 })))
  try {
    await runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(table)}`))
  } finally {
    await runtime.dispose()
  }
}

const stores: ReadonlyArray<{ readonly kind: "SQLite" | "PostgreSQL" }> = [
  { kind: "SQLite" },
  ...(postgresAvailable ? [{ kind: "PostgreSQL" as const }] : [])
]
if (!postgresAvailable) console.log("PostgreSQL not reachable: the Promise API's crash test runs on SQLite only")

describe.concurrent("Node durable enqueue across a crash", () => {
  for (const store of stores) {
    test(`${store.kind}: a task enqueued by a plain handler and running when the process is killed (SIGKILL) runs again after a restart`, async ({ fixtures, onTestFinished }) => {
      const table = uniqueTable("nodeproc")
      if (store.kind === "PostgreSQL") onTestFinished(() => dropTable(table))
      const env = { ...(store.kind === "PostgreSQL" ? { DATABASE_URL: postgresUrl, DURABLE_TABLE: table } : {}), LEASE_MS: "1000" }
      const first = await fixtures.start("node-server", { ...env, HOLD_NOTES: "1" })
      const reply = await request(first.port, "POST", "/note/n1")
      expect(reply.status).toBe(202)
      await first.waitForLog((lines) => lines.includes("started note n1"))
      first.signal("SIGKILL")
      const killed = await first.waitForExit()
      expect(killed.signal).toBe("SIGKILL")
      // the same store and log; its lease expired, the task is taken again and finishes
      const second = await fixtures.start("node-server", {
        ...env,
        LOG_FILE: first.logFile,
        ...(store.kind === "SQLite" ? { SQLITE_FILE: join(dirname(first.logFile), "tasks.sqlite") } : {})
      })
      await second.waitForLog((lines) => lines.includes("done note n1"))
      expect(await second.logLines()).toEqual(["started note n1", "started note n1", "done note n1"])
      second.signal("SIGTERM")
      const report = await expectCleanExit(second)
      expect(report).toContain("durable done=1 retried=0 dead=0 released=0")
    })
  }
})

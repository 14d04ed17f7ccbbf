/**
 * The PostgreSQL the durable tests run against: `TEST_DATABASE_URL` (`.ci/run` sets it), by default
 * `postgres://postgres@127.0.0.1:5432/test`. On a machine without it, the tests that need it print
 * one line saying so and skip; the rest still run.
 */
import * as Net from "node:net"
import { randomUUID } from "node:crypto"
import { describe } from "vitest"

export const postgresUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Whether the server answers on its port (a TCP connect, bounded by a 2 s socket timeout). */
const reachable = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const parsed = new URL(url)
    const socket = Net.connect({ host: parsed.hostname, port: Number(parsed.port || 5432) })
    socket.setTimeout(2_000)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
  })

/** Checked once per test file. */
export const postgresAvailable: boolean = await reachable(postgresUrl)

let told = false

/** `describe` for PostgreSQL tests: skipped, with one line saying why, where the server is absent. */
export const describePostgres = (name: string, body: () => void): void => {
  if (!postgresAvailable && !told) {
    told = true
    console.log(`PostgreSQL not reachable at ${new URL(postgresUrl).host}: skipping the PostgreSQL tests (set TEST_DATABASE_URL)`)
  }
  describe.skipIf(!postgresAvailable)(name, body)
}

/** A table name no other test uses, so tests (and test files running in parallel) never share a queue. */
export const uniqueTable = (prefix = "t"): string => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 16)}`

/**
 * Durable tasks through the Promise API (effect-background/Node): `make({ durable })` starts the
 * workers, `enqueue` commits a task from a plain handler and holds it until that request's
 * response is written, `close` gives running tasks the grace and releases the rest to the store
 * for the next process. On a SQLite file in a temporary directory, and on the real PostgreSQL when
 * it is reachable (a table of its own per test; skipped with one printed line otherwise). Real
 * node:http servers on 127.0.0.1, real HTTP; steps sequenced by promises the tasks resolve.
 * The crash of a whole process (SIGKILL, restart) is in test/Node-process.test.ts.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, ManagedRuntime, Option, Schedule, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it, vi } from "vitest"
import * as Durable from "../src/Durable.js"
import { DurablePayloadError, InvalidOptionError } from "../src/Errors.js"
import * as Node from "../src/Node.js"
import { type Deferred, deferred, listen, send } from "./support/node-http.js"
import { describePostgres, postgresUrl, uniqueTable } from "./support/postgres.js"

const scratch = mkdtempSync(join(tmpdir(), "node-durable-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const opened: Array<Node.BackgroundRuntime> = []
const make = async (options: Node.Options): Promise<Node.BackgroundRuntime> => {
  const runtime = await Node.make({ printReport: false, ...options })
  opened.push(runtime)
  return runtime
}
/** Closes the runtimes a test made (before its store is dropped). */
const closeAll = () => Promise.all(opened.splice(0).map((runtime) => runtime.close()))
afterEach(async () => {
  vi.restoreAllMocks()
  await closeAll()
})

/** Deferreds by key, made on first use by either side. */
const signals = <A = void>() => {
  const all = new Map<string, Deferred<A>>()
  return (key: string): Deferred<A> => {
    let found = all.get(key)
    if (found === undefined) all.set(key, found = deferred<A>())
    return found
  }
}

interface StoreKind {
  /** A store for one test: its layer (a fresh one per runtime, on the same file or table) and a cleanup. */
  readonly open: () => { readonly layer: () => Node.DurableOptions["store"]; readonly dispose: () => Promise<void> }
}

let files = 0
const sqliteKind: StoreKind = {
  open: () => {
    const filename = join(scratch, `tasks-${++files}.sqlite`)
    return { layer: () => Durable.sqlite({ filename, pollInterval: "20 millis" }), dispose: async () => {} }
  }
}

const postgresKind: StoreKind = {
  open: () => {
    const table = uniqueTable("node")
    const layer = () => Durable.postgres({ url: postgresUrl, table, pollInterval: "20 millis", maxConnections: 2 })
    return {
      layer,
      dispose: async () => {
        const runtime = ManagedRuntime.make(Layer.orDie(layer()))
        await runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(table)}`))
        await runtime.dispose()
      }
    }
  }
}

const Label = Schema.Struct({ label: Schema.String })

const suite = (kind: StoreKind) => {
  it("a plain handler's enqueue for its request is committed before the response and runs once the response is written", async () => {
    const store = kind.open()
    try {
      const ran = signals<{ readonly written: boolean | undefined; readonly attempt: number }>()
      const responses = new Map<string, Http.ServerResponse>()
      const order: Array<string> = []
      const Note = Node.durableTask("note", {
        payload: Label,
        run: async ({ label }, { attempt }) => {
          order.push(label)
          ran(label).resolve({ written: responses.get(label)?.writableFinished, attempt })
        }
      })
      const server = Http.createServer()
      const background = await make({ server, durable: { store: store.layer(), tasks: [Note] } })
      let storedBeforeResponse: unknown
      server.on("request", async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
        responses.set("held", response)
        const id = await background.enqueue(Note, { label: "held" }, { request })
        // A task enqueued after it, not held, of the same type (one worker, oldest first): had the
        // held one been available, the worker would have taken it before this one.
        await background.enqueue(Note, { label: "probe" })
        await ran("probe").promise
        storedBeforeResponse = [...order]
        response.end(id)
      })
      const port = await listen(server)
      const reply = await send(port, "/signup")
      expect(reply.status).toBe(200)
      expect(storedBeforeResponse).toEqual(["probe"])
      expect(await ran("held").promise).toEqual({ written: true, attempt: 1 })
      expect(order).toEqual(["probe", "held"])
      const result = await background.close()
      expect(result.report).toContain("durable done=2 retried=0 dead=0 released=0")
      expect(result.exitCode).toBe(0)
      // the id answered is the task's, as the store has it
      const check = ManagedRuntime.make(Layer.orDie(store.layer()))
      try {
        const status = await check.runPromise(Durable.status(reply.body))
        expect(Option.map(status, (task) => [task.name, task.state])).toEqual(Option.some(["note", "done"]))
      } finally {
        await check.dispose()
      }
    } finally {
      await closeAll()
      await store.dispose()
    }
  })

  it("a rejected attempt is retried; at close a run past the grace has its signal aborted and is released to the store, and the next runtime runs it", async () => {
    const store = kind.open()
    try {
      vi.spyOn(console, "error").mockImplementation(() => {})
      vi.spyOn(console, "log").mockImplementation(() => {})
      const attempts: Array<number> = []
      const flakyDone = deferred()
      const Flaky = Node.durableTask("flaky", {
        payload: Label,
        retry: Schedule.spaced("10 millis"),
        run: async (_payload, { attempt }) => {
          attempts.push(attempt)
          if (attempt === 1) throw new Error("smtp down")
          flakyDone.resolve()
        }
      })
      const started = deferred()
      const aborted = deferred<unknown>()
      const Slow = Node.durableTask("slow", {
        payload: Label,
        run: (_payload, { signal }) =>
          new Promise<void>((_resolve, reject) => {
            started.resolve()
            signal.addEventListener("abort", () => {
              aborted.resolve(signal.reason)
              reject(signal.reason)
            })
          })
      })
      const first = await make({ durable: { store: store.layer(), tasks: [Flaky, Slow] }, grace: 0 })
      await first.enqueue(Flaky, { label: "mail" })
      await flakyDone.promise
      expect(attempts).toEqual([1, 2])
      const slowId = await first.enqueue(Slow, { label: "resize" })
      await started.promise
      const result = await first.close()
      expect(await aborted.promise).toBeDefined()
      expect(result.report).toContain("durable done=1 retried=1 dead=0 released=1")
      expect(result.exitCode).toBe(0)

      const ranAgain = deferred<string>()
      const SlowNext = Node.durableTask("slow", {
        payload: Label,
        run: async ({ label }, { id }) => ranAgain.resolve(`${label} ${id}`)
      })
      await make({ durable: { store: store.layer(), tasks: [SlowNext] } })
      expect(await ranAgain.promise).toBe(`resize ${slowId}`)
    } finally {
      await closeAll()
      await store.dispose()
    }
  })
}

describe("Node durable on SQLite", () => {
  suite(sqliteKind)

  it("refuses a bad durable option at make, a bad task option when it starts the workers, and an enqueue without a store", async () => {
    expect(() => Node.make({ durable: { store: "tasks.sqlite", tasks: "note" } as never })).toThrow(InvalidOptionError)
    try {
      void Node.make({ durable: { store: "tasks.sqlite", tasks: "note" } as never })
    } catch (error) {
      expect((error as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["durable.store", "durable.tasks"])
    }
    expect(() => Node.make({ durable: 1 as never })).toThrow(/durable/)
    const Bad = Node.durableTask("bad", { payload: Label, run: async () => {}, maxAttempts: 0 })
    const refused = await Node.make({ durable: { store: sqliteKind.open().layer(), tasks: [Bad] } }).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect((refused as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["tasks[0].maxAttempts"])
    const NotAFunction = Node.durableTask("broken", { payload: Label, run: "send" as never })
    const broken = await Node.make({ durable: { store: sqliteKind.open().layer(), tasks: [NotAFunction] } }).catch((error: unknown) => error)
    expect((broken as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["tasks[0].run"])

    const plain = await make({})
    const Note = Node.durableTask("note", { payload: Label, run: async () => {} })
    await expect(plain.enqueue(Note, { label: "x" })).rejects.toThrow(/durable/)

    const withStore = await make({ durable: { store: sqliteKind.open().layer(), tasks: [Note] } })
    await expect(withStore.enqueue(Note, { label: "x" }, { request: {} as never })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(withStore.enqueue(Note, { label: "x" }, { key: "" })).rejects.toThrow(/key/)
    await expect(withStore.enqueue(Note, { label: 42 } as never)).rejects.toBeInstanceOf(DurablePayloadError)
    // the same key gives the same id: stored once
    const once = await withStore.enqueue(Note, { label: "x" }, { key: "welcome:ada" })
    expect(await withStore.enqueue(Note, { label: "x" }, { key: "welcome:ada" })).toBe(once)
  })
})

describePostgres("Node durable on PostgreSQL", () => {
  suite(postgresKind)
})

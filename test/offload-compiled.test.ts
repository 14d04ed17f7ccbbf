/**
 * The production path: the library compiled to JavaScript, a worker module in plain `.js`, and
 * plain `node` with no TypeScript loader anywhere — the same call site as under tsx, down to the
 * `.ts` in the worker module's URL, which resolves to its compiled `.js` sibling.
 */
import { execFile } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, test } from "vitest"

const run = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), "..")
let out = ""

beforeAll(async () => {
  // Compile inside the project so that `effect` resolves from its node_modules.
  out = await mkdtemp(join(root, "node_modules", ".dist-test-"))
  await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", out], { cwd: root })
  await writeFile(join(out, "package.json"), JSON.stringify({ type: "module" }))
  await writeFile(
    join(out, "square.worker.js"),
    `import { workerData } from "node:worker_threads"
import * as Offload from "./Offload.js"
import { Loader, Square } from "./square.tasks.js"
export default Offload.worker(
  Offload.implement(Square, (n) => n * n),
  // the TypeScript loader the worker was told to register, if any
  Offload.implement(Loader, () => workerData.tsx ?? null)
)
`
  )
  await writeFile(
    join(out, "square.tasks.js"),
    `import { Schema } from "effect"
import * as Offload from "./Offload.js"
export const Square = Offload.task("square", { input: Schema.Number, output: Schema.Number })
export const Loader = Offload.task("loader", { input: Schema.Null, output: Schema.NullOr(Schema.String) })
`
  )
  await writeFile(
    join(out, "main.js"),
    `import { Effect } from "effect"
import * as Offload from "./Offload.js"
import { Loader, Square } from "./square.tasks.js"
const program = Effect.gen(function*() {
  const results = yield* Effect.forEach([1, 2, 3, 12], (n) => Offload.run(Square, n), { concurrency: 4 })
  const stuck = yield* Effect.exit(Offload.blocking(({ crypto }) => crypto.randomBytes(4).length, null).pipe(Effect.timeout("10 seconds")))
  const workerLoader = yield* Offload.run(Loader, null)
  console.log(JSON.stringify({ results, blocking: stuck._tag, workerLoader }))
}).pipe(Effect.provide(Offload.layer({ module: new URL("./square.worker.ts", import.meta.url), maxThreads: 2 })))
Effect.runPromise(program)
`
  )
})

afterAll(async () => {
  if (out !== "") await rm(out, { recursive: true, force: true })
})

describe("Offload from compiled JavaScript", () => {
  test("runs typed tasks and blocking calls with a .js worker module under plain node", async ({ onTestFinished }) => {
    // Bounded by the test's timeout, not a clock of its own (its start depends on the machine's
    // load); a process still running when the test ends, a timeout included, is killed.
    const stop = new AbortController()
    onTestFinished(() => stop.abort())
    const { stdout } = await run(process.execPath, [join(out, "main.js")], { cwd: out, signal: stop.signal })
    // no TypeScript loader in the worker: the `.ts` URL was resolved to the compiled `.js` module
    expect(JSON.parse(stdout.trim())).toEqual({ results: [1, 4, 9, 144], blocking: "Success", workerLoader: null })
  })
})

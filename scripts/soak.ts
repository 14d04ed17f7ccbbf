/**
 * `npm run soak`: the long runs of the reliability suite.
 *
 * 1. A million fire-and-forget tasks (scripts/soak-tasks.ts, in a child process with --expose-gc):
 *    the heap returns to its baseline, the supervisor holds nothing, and once the layer is released
 *    the process exits by itself, with nothing left holding the event loop.
 * 2. Shutdown under load, SHUTDOWN_TRIALS times (at least 20, the default):
 *    test/reliability/shutdown-under-load.test.ts.
 * 3. Durable tasks, DURABLE_TRIALS times each (at least 20, the default): test/durable-process.test.ts
 *    — kill -9 under load then a restart on the same store (SQLite and PostgreSQL, with the
 *    in-memory examples/notify.ts under the same kill for comparison), and three processes on one
 *    PostgreSQL table with and without one of them killed. Totals per scenario and store: requests
 *    accepted, lines written, duplicates (runs again after a crash: at least once) and lost (0).
 *    The PostgreSQL ones need TEST_DATABASE_URL's server (skipped, saying so, without it).
 *
 * SOAK_PARTS (e.g. `durable`, or `tasks,shutdown`) runs some of them only.
 *
 * Prints what it measured and exits non-zero if any check failed. Every child is bounded in time
 * and killed by its PID past the bound.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const tasks = Number(process.env.SOAK_TASKS ?? 1_000_000)
const trials = Math.max(20, Number(process.env.SHUTDOWN_TRIALS ?? 20))
const durableTrials = Math.max(20, Number(process.env.DURABLE_TRIALS ?? 20))
/** Which parts to run (SOAK_PARTS=durable, say): all three by default. */
const parts = new Set((process.env.SOAK_PARTS ?? "tasks,shutdown,durable").split(",").map((part) => part.trim()))
/** How far above its baseline the heap may settle once all tasks are done. */
const heapSlackBytes = 8 * 1024 * 1024
/** Handles a finished process may still list: its own standard streams. */
const stdio = new Set(["PipeWrap", "TTYWrap"])

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly exitedAt: number
  readonly timedOut: boolean
}

/** Runs a child to its end, at most `timeoutMillis`; past that it is killed by its PID. */
const run = (command: string, args: ReadonlyArray<string>, env: Record<string, string>, timeoutMillis: number) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    }, timeoutMillis)
    child.once("error", reject)
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, exitedAt: Date.now(), timedOut })
    })
  })

const failures: Array<string> = []
/** Prints one measured line, ending in `ok` or `FAILED`; a failure is summed up at the end. */
const report = (text: string, ok?: boolean) => {
  if (ok === false) failures.push(text)
  process.stdout.write(`  ${text}${ok === undefined ? "" : ok ? ": ok" : ": FAILED"}\n`)
}
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

interface TaskSoak {
  readonly total: number
  readonly ran: number
  readonly errorsLogged: number
  readonly stats: { finished: number; failed: number; interrupted: number; rejected: number }
  readonly owned: number
  readonly held: number
  readonly elapsedMillis: number
  readonly baselineHeap: number
  readonly pendingHeapMax: number | undefined
  /** After the last batch, the layer still alive: the state the baseline was taken in. */
  readonly idleHeap: number
  /** After the layer was released. */
  readonly finalHeap: number
  readonly activeResources: ReadonlyArray<string>
  readonly printedAt: number
}

// 1. A million tasks.
if (parts.has("tasks")) {
  process.stdout.write(`soak: ${tasks} fire-and-forget tasks…\n`)
  const soak = await run(process.execPath, ["--expose-gc", "--import", "tsx", "scripts/soak-tasks.ts"], {
    SOAK_TASKS: String(tasks)
  }, 15 * 60_000)
  const line = soak.stdout.split("\n").find((candidate) => candidate.startsWith("soak-tasks "))
  if (line === undefined || soak.timedOut) {
    report(`the task soak finished${soak.timedOut ? " within 15 minutes" : ""}:\n${soak.stdout}\n${soak.stderr}`, false)
  } else {
    const m = JSON.parse(line.slice("soak-tasks ".length)) as TaskSoak
    const { failed, finished, interrupted, rejected } = m.stats
    const rate = Math.round(m.total / (m.elapsedMillis / 1000))
    report(`${m.total} tasks in ${(m.elapsedMillis / 1000).toFixed(1)} s (${rate} tasks/s)`)
    report(
      `supervisor: finished=${finished} failed=${failed} interrupted=${interrupted} (keyed, replaced) ` +
        `rejected=${rejected}; bodies ran=${m.ran}; error lines=${m.errorsLogged}`
    )
    report("every task accounted for (finished + interrupted = total)", finished + interrupted === m.total && rejected === 0)
    report("every task that finished without failing ran its body (bodies ran = finished - failed)", m.ran === finished - failed)
    report("each failure logged once (error lines = failed)", m.errorsLogged === failed)
    report(`the supervisor holds nothing (snapshot ${m.owned} tasks, ${m.held} records)`, m.owned === 0 && m.held === 0)
    const growth = m.idleHeap - m.baselineHeap
    report(
      `heap, supervisor alive and idle: baseline ${mb(m.baselineHeap)}, ` +
        `with a batch pending ${m.pendingHeapMax === undefined ? "-" : mb(m.pendingHeapMax)}, ` +
        `after the last batch ${mb(m.idleHeap)} (${growth >= 0 ? "+" : ""}${mb(growth)}; allowed +${mb(heapSlackBytes)})`,
      growth <= heapSlackBytes
    )
    report(`heap once the layer is released: ${mb(m.finalHeap)}`)
    const leftover = m.activeResources.filter((resource) => !stdio.has(resource))
    report(`after release, active resources: [${m.activeResources.join(", ")}]`, leftover.length === 0)
    report(
      `the process exited by itself (code ${soak.code}, ${soak.exitedAt - m.printedAt} ms after its last line)`,
      soak.code === 0 && soak.signal === null
    )
  }
}

// 2. Shutdown under load.
if (parts.has("shutdown")) {
  process.stdout.write(`soak: shutdown under load, ${trials} trials…\n`)
  const vitest = await run(
    process.execPath,
    ["node_modules/vitest/vitest.mjs", "run", "test/reliability/shutdown-under-load.test.ts"],
    { SHUTDOWN_TRIALS: String(trials) },
    30 * 60_000
  )
  for (const trialLine of vitest.stdout.split("\n").filter((candidate) => /^trial \d+ /.test(candidate))) report(trialLine)
  const summary = vitest.stdout.split("\n").find((candidate) => /^\s+Tests\s/.test(candidate))?.trim() ?? "no summary"
  report(`shutdown-under-load ${summary}`, vitest.code === 0 && !vitest.timedOut)
  if (vitest.code !== 0) {
    // What failed, in vitest's words: each failing trial and its first assertion.
    const reasons = vitest.stdout.split("\n").filter((candidate) => /^\s+(×|→) /.test(candidate))
    process.stdout.write(`${reasons.length > 0 ? reasons.join("\n") : `${vitest.stdout}\n${vitest.stderr}`}\n`)
  }
}

// 3. Durable tasks.
if (parts.has("durable")) {
  process.stdout.write(`soak: durable tasks, ${durableTrials} trials of each scenario…\n`)
  const durable = await run(
    process.execPath,
    ["node_modules/vitest/vitest.mjs", "run", "test/durable-process.test.ts"],
    { DURABLE_TRIALS: String(durableTrials) },
    90 * 60_000
  )
  interface Totals {
    trials: number
    accepted: number
    written: number
    duplicates: number
    lost: number
    unansweredWritten: number
  }
  const totals = new Map<string, Totals>()
  for (const resultLine of durable.stdout.split("\n").filter((candidate) => candidate.startsWith("durable-result "))) {
    const match = /^durable-result (\S+) (\S+) trial \d+: (.*)$/.exec(resultLine)
    if (match === null) continue
    const numbers = Object.fromEntries([...match[3]!.matchAll(/([a-z-]+)=(\d+)/g)].map(([, key, value]) => [key!, Number(value)]))
    const key = `${match[1]} ${match[2]}`
    const sum = totals.get(key) ?? { trials: 0, accepted: 0, written: 0, duplicates: 0, lost: 0, unansweredWritten: 0 }
    sum.trials++
    sum.accepted += numbers.accepted ?? 0
    sum.written += numbers.written ?? 0
    sum.duplicates += numbers.duplicates ?? 0
    sum.lost += numbers.lost ?? 0
    sum.unansweredWritten += numbers["unanswered-written"] ?? 0
    totals.set(key, sum)
  }
  for (const [key, sum] of totals) {
    const text = `${key}: ${sum.trials} trials, accepted=${sum.accepted} written=${sum.written} duplicates=${sum.duplicates} ` +
      `lost=${sum.lost}${key.includes("in-memory") ? "" : ` unanswered-written=${sum.unansweredWritten}`}`
    // The in-memory example is the comparison: what it loses is measured, not checked.
    report(key.includes("in-memory") ? `${text} (for comparison)` : `${text}; lost=0 expected`, key.includes("in-memory") ? undefined : sum.lost === 0)
  }
  const skipped = durable.stdout.split("\n").find((candidate) => candidate.startsWith("PostgreSQL not reachable"))
  if (skipped !== undefined) report(skipped)
  const durableSummary = durable.stdout.split("\n").find((candidate) => /^\s+Tests\s/.test(candidate))?.trim() ?? "no summary"
  report(`durable-process ${durableSummary}`, durable.code === 0 && !durable.timedOut)
  if (durable.code !== 0) {
    const reasons = durable.stdout.split("\n").filter((candidate) => /^\s+(×|→) /.test(candidate))
    process.stdout.write(`${reasons.length > 0 ? reasons.join("\n") : `${durable.stdout}\n${durable.stderr}`}\n`)
  }
}

const failed = failures.map((failure) => `  ${failure}\n`).join("")
process.stdout.write(failures.length === 0 ? "soak: all checks passed\n" : `soak: ${failures.length} check(s) failed:\n${failed}`)
if (failures.length > 0) process.exitCode = 1

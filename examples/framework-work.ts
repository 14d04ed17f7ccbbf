/**
 * The work the framework examples (express.ts, fastify.ts, hono.ts) share: the runtime with its
 * worker pool, the notification written after the response, the daemon's loop and the CPU route's
 * input check — so each example shows only what its framework adds.
 */
import { appendFile } from "node:fs/promises"
import { setTimeout as sleep } from "node:timers/promises"
import * as Node from "../src/Node.js"
import { env } from "./env.js"
import { masked } from "./notify.js"

export { Crunch } from "./workers/cpu.tasks.js"

/** The runtime: the examples' drain and grace, and a worker pool of OFFLOAD_THREADS (default 1). */
export const makeBackground = (): Promise<Node.BackgroundRuntime> =>
  Node.make({
    drainTimeout: env.drainMillis,
    grace: env.graceMillis,
    offload: {
      module: new URL("./workers/cpu.worker.ts", import.meta.url),
      minThreads: env.number("OFFLOAD_THREADS", 1),
      maxThreads: env.number("OFFLOAD_THREADS", 1)
    }
  })

const taskDelay = env.taskDelayMillis(0)

/** The task's name: enough to tell which notification was lost, not the whole address. */
export const notifyName = (email: string): string => `notify ${masked(email)}`

/** The after-response task: waits TASK_DELAY_MS (stopping when its signal aborts), then appends to LOG_FILE. */
export const notify = (email: string): Node.Callback => async (signal) => {
  try {
    await sleep(taskDelay, undefined, { signal })
  } catch (error) {
    console.warn(`notification for ${masked(email)} was not sent: interrupted`)
    throw error
  }
  await appendFile(env.logFile, `notification for ${email}: some notification\n`)
}

/** The daemon: a beat every INTERVAL_MS until its signal aborts. */
export const heartbeat: Node.Callback = async (signal) => {
  let beat = 0
  while (!signal.aborted) {
    console.log(`daemon beat #${++beat}`)
    await sleep(env.intervalMillis, undefined, { signal }).catch(() => undefined)
  }
  console.log("daemon stopped")
}

/** `n` of the CPU route, or `undefined` when it is not a whole number from 0 to 1e9. */
export const cpuInput = (raw: unknown): number | undefined => {
  const n = Number(raw ?? 1_000_000)
  return Number.isInteger(n) && n >= 0 && n <= 1_000_000_000 ? n : undefined
}

export const CPU_INPUT_ERROR = { error: "n must be a whole number from 0 to 1000000000" }

/** Shared helpers for the benchmarks: machine description, percentiles, ports, child processes. */
import autocannon from "autocannon"
import type { ChildProcess } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"

/**
 * The `--import` that child processes of the benchmarks load: TypeScript compiled as `tsc` emits
 * it (bench/loader/hooks.mjs), so the library is measured as it ships rather than under tsx.
 */
export const LOADER = new URL("./loader/register.mjs", import.meta.url).href

/** One line naming the machine the figures were measured on. */
export const machine = (): string => {
  const cpus = os.cpus()
  return `machine: ${cpus[0]?.model ?? "unknown cpu"} × ${cpus.length} (available parallelism ${os.availableParallelism()}), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, node ${process.version}, ` +
    `load average ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}, measured ${new Date().toISOString()}`
}

/** The q-quantile (0..1) by nearest rank; NaN for no samples. */
export const percentile = (samples: ReadonlyArray<number>, q: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export const ratio = (value: number): string => `${value.toFixed(2)}×`

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** A port that was free on 127.0.0.1 a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

/** Resolves once the child prints its `listening on` line; rejects if it exits or takes too long. */
export const waitForListening = (child: ChildProcess, timeoutMillis: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let output = ""
    const timer = setTimeout(() => reject(new Error(`not listening after ${timeoutMillis}ms:\n${output}`)), timeoutMillis)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(output)) {
        clearTimeout(timer)
        child.stdout?.off("data", onData)
        resolve()
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before listening:\n${output}`))
    })
  })

/** The median (the mean of the two middle samples when their number is even); NaN for no samples. */
export const median = (samples: ReadonlyArray<number>): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** How a figure stands against its goal, as printed next to it. */
export const verdict = (met: boolean): string => (met ? "MET" : "NOT MET")

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeoutMillis`. */
export const waitForPort = async (port: number, timeoutMillis: number): Promise<void> => {
  const deadline = performance.now() + timeoutMillis
  while (performance.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (open) return
    await sleep(100)
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMillis}ms`)
}

/** How a child process ended, with everything it printed. */
export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A child process whose output is kept, and a promise of its exit. */
export interface Running {
  readonly child: ChildProcess
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  readonly exited: Promise<ChildExit>
}

/** Keeps a spawned child's output and settles `exited` once it has exited and its streams closed. */
export const track = (child: ChildProcess): Running => {
  let stdout = ""
  let stderr = ""
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<ChildExit>((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  exited.catch(() => undefined)
  return { child, output: () => ({ stdout, stderr }), exited }
}

/**
 * Waits for a child to exit, at most `timeoutMillis`; past that it is killed (SIGKILL, by its own
 * pid) and the promise rejects, so a stuck child never outlives its benchmark.
 */
export const awaitExit = async (running: Running, timeoutMillis: number): Promise<ChildExit> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      running.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          running.child.kill("SIGKILL")
          const { stdout, stderr } = running.output()
          reject(new Error(`child ${running.child.pid} did not exit within ${timeoutMillis}ms (killed)\n${stdout}\n${stderr}`))
        }, timeoutMillis)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The one line a `Server.launch` process prints when it has shut down, if it printed it. */
export const shutdownReport = (stdout: string): string | undefined =>
  stdout.split("\n").find((line) => line.startsWith("shutdown report:"))

/** What one bounded autocannon run measured. */
export interface RoundResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly failed: number
}

let nextEmail = 0

/**
 * One bounded autocannon run of `POST /send-notification/<email>` with `connections` connections.
 * Each request gets its own email `r<round>u<n>@example.com`; the emails answered 2xx are added to
 * `answered`, so a run can check that every answered request's line was written.
 */
export const notifyRound = async (
  port: number,
  connections: number,
  seconds: number,
  round: string,
  answered: Set<string>
): Promise<RoundResult> => {
  const emails = new WeakMap<object, string>()
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [{
      method: "POST",
      setupRequest: (request, context) => {
        const email = `r${round}u${nextEmail++}@example.com`
        emails.set(context, email)
        return { ...request, path: `/send-notification/${email}` }
      },
      onResponse: (status, _body, context) => {
        const email = emails.get(context)
        if (status >= 200 && status < 300 && email !== undefined) answered.add(email)
      }
    }]
  })
  return {
    perSecond: result["2xx"] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.errors + result.non2xx
  }
}

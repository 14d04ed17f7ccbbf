/** Shared helpers for the benchmarks: machine description, percentiles, ports, child processes. */
import type { ChildProcess } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"

/** One line naming the machine the figures were measured on. */
export const machine = (): string => {
  const cpus = os.cpus()
  return `machine: ${cpus[0]?.model ?? "unknown cpu"} × ${cpus.length} (available parallelism ${os.availableParallelism()}), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, node ${process.version}, ` +
    `measured ${new Date().toISOString()}`
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

/**
 * Shared settings for the examples: every example listens on 127.0.0.1:$PORT (default 3000) and
 * drains within DRAIN_MS (default 10000), then gives background work GRACE_MS (default 5000);
 * HARD_DEADLINE_MS, when set, bounds the whole shutdown.
 */
import { realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Server } from "../src/index.js"

const numberFromEnv = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const value = Number(raw)
  if (!Number.isFinite(value)) {
    process.stderr.write(`${name} must be a number, got ${JSON.stringify(raw)}\n`)
    process.exit(2)
  }
  return value
}

export const env = {
  port: numberFromEnv("PORT", 3000),
  drainMillis: numberFromEnv("DRAIN_MS", 10_000),
  graceMillis: numberFromEnv("GRACE_MS", 5_000),
  taskDelayMillis: (fallback: number) => numberFromEnv("TASK_DELAY_MS", fallback),
  intervalMillis: numberFromEnv("INTERVAL_MS", 5_000),
  logFile: process.env.LOG_FILE ?? "./log.txt",
  number: numberFromEnv
}

/** `Server.launch` options: HARD_DEADLINE_MS replaces the default hard deadline (the bounds plus 5 s). */
export const launchOptions: Server.LaunchOptions = process.env.HARD_DEADLINE_MS
  ? { hardDeadline: numberFromEnv("HARD_DEADLINE_MS", 0) }
  : {}

/** The server options every example shares. */
export const serverOptions = {
  port: env.port,
  host: "127.0.0.1",
  drainTimeout: env.drainMillis,
  grace: env.graceMillis
}

/**
 * Whether the module at `moduleUrl` is the script node was asked to run, so a scenario file can
 * both run on its own and lend its routes and jobs to `server.ts`.
 */
export const isMain = (moduleUrl: string): boolean => {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}

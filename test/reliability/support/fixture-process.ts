/**
 * Runs a fixture server (`test/fixtures/<name>.ts`) as a real node process, like the example tests
 * do with `examples/*.ts`: a free port, a fresh LOG_FILE, real signals, and every child killed by
 * PID when its test ends.
 */
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { test as base } from "vitest"
import { freePort, RunningExample } from "../../support/process-example.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))

export class FixtureLauncher {
  private readonly running: Array<RunningExample> = []
  private readonly dirs: Array<string> = []

  /** Spawns `test/fixtures/<name>.ts` and waits until it listens. */
  async start(name: string, env: Record<string, string> = {}): Promise<RunningExample> {
    const port = await freePort()
    const dir = await mkdtemp(join(tmpdir(), `effect-background-${name}-`))
    this.dirs.push(dir)
    const logFile = join(dir, "log.txt")
    const child = spawn(process.execPath, ["--import", "tsx", `test/fixtures/${name}.ts`], {
      cwd: root,
      env: { ...process.env, PORT: String(port), LOG_FILE: logFile, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const server = new RunningExample(name, child, port, logFile)
    this.running.push(server)
    await server.waitForLine(new RegExp(`listening on http://127\\.0\\.0\\.1:${port}\\b`))
    return server
  }

  async cleanup(): Promise<void> {
    for (const server of this.running) server.kill()
    await Promise.all(this.running.map((server) => server.exited.catch(() => undefined)))
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })))
  }
}

/** A vitest `test` with a `fixtures` launcher of its own, cleaned up when the test ends. */
export const fixtureTest = base.extend<{ fixtures: FixtureLauncher }>({
  fixtures: async ({}, use) => {
    const launcher = new FixtureLauncher()
    try {
      await use(launcher)
    } finally {
      await launcher.cleanup()
    }
  }
})

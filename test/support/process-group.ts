/**
 * Runs a command the way a terminal does — in a process group of its own, so that "Ctrl-C" is
 * SIGINT to every process in the group (npm, tsx and the server alike) — and finds the server
 * process behind it. Used to drive `npm start` and `npx tsx` as a user would.
 */
import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { test as base } from "vitest"
import { freePort, RunningExample } from "./process-example.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** The PIDs of a process's children (Linux: `/proc/<pid>/task/<pid>/children`). */
export const childrenOf = async (pid: number): Promise<ReadonlyArray<number>> => {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")
    return text.split(" ").filter((part) => part.trim() !== "").map(Number)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
    throw error
  }
}

/** The command line of a process, arguments joined by spaces; `undefined` once it is gone. */
export const commandLineOf = async (pid: number): Promise<string | undefined> => {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter((part) => part !== "").join(" ")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw error
  }
}

/** Whether a process with this PID exists (a zombie counts until its parent reaps it). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Every descendant of `pid`, depth first. */
export const descendantsOf = async (pid: number): Promise<ReadonlyArray<number>> => {
  const children = await childrenOf(pid)
  const below = await Promise.all(children.map(descendantsOf))
  return children.flatMap((child, index) => [child, ...(below[index] ?? [])])
}

/** A command running in its own process group, as a terminal's foreground job. */
export class ForegroundJob extends RunningExample {
  /** The process group's id: the PID of the command started. */
  get group(): number {
    const pid = this.child.pid
    if (pid === undefined) throw new Error(`${this.name} has no PID`)
    return pid
  }

  /** Ctrl-C or the like: `signal` to every process in the group. */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.group, signal)
  }

  /**
   * The server process: the descendant whose command line runs `script`. Found once it is
   * listening, so it exists by then.
   */
  async serverPid(script: string): Promise<number> {
    for (const pid of await descendantsOf(this.group)) {
      const command = await commandLineOf(pid)
      if (command !== undefined && /^(\S*\/)?node /.test(command) && command.includes(script)) return pid
    }
    throw new Error(`${this.name}: no node process running ${script} below PID ${this.group}`)
  }
}

/**
 * Starts commands as foreground jobs for one test and cleans up after it: every group still alive
 * is killed (SIGKILL to the group, so a server a broken test left behind goes too) and the
 * temporary directories removed.
 */
export class JobLauncher {
  private readonly jobs: Array<ForegroundJob> = []
  private readonly dirs: Array<string> = []

  /**
   * Spawns `command args` in `cwd` (the repository by default) on a free PORT with a fresh LOG_FILE
   * and SQLITE_FILE (the demo's durable tasks, never the repository's ./data).
   */
  async spawn(
    name: string,
    command: string,
    args: ReadonlyArray<string>,
    options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
  ): Promise<ForegroundJob> {
    const port = await freePort()
    const dir = await mkdtemp(join(tmpdir(), `effect-background-${name}-`))
    this.dirs.push(dir)
    const logFile = join(dir, "log.txt")
    const child = spawn(command, [...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, PORT: String(port), LOG_FILE: logFile, SQLITE_FILE: join(dir, "tasks.sqlite"), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    const job = new ForegroundJob(name, child, port, logFile)
    this.jobs.push(job)
    return job
  }

  async cleanup(): Promise<void> {
    for (const job of this.jobs) {
      try {
        process.kill(-job.group, "SIGKILL")
      } catch {
        // The whole group has exited.
      }
    }
    await Promise.all(this.jobs.map((job) => job.exited.catch(() => undefined)))
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })))
  }
}

/** A vitest `test` whose `jobs` fixture is a launcher of its own, cleaned up when the test ends. */
export const jobTest = base.extend<{ jobs: JobLauncher }>({
  jobs: async ({}, use) => {
    const jobs = new JobLauncher()
    try {
      await use(jobs)
    } finally {
      await jobs.cleanup()
    }
  }
})

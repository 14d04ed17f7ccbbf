/**
 * Runs an example as a real process — `node --import tsx examples/<name>.ts`, so signals reach the
 * node process itself — and talks to it over real sockets. No timing thresholds: waiting for a
 * process to listen ends when it listens or exits, however long its start takes on a loaded
 * machine (vitest's test timeout bounds a process that hangs, and the launcher then kills it);
 * every other wait here is an upper bound for "eventually", and a test asserts outcomes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import * as Http from "node:http"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, test as base, type TestContext } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** How long "eventually" may take on a loaded 2-core machine (not used for starting up: see `waitForListening`). */
export const patience = 30_000

/** A port that was free a moment ago: bind port 0 on 127.0.0.1, read it, close. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port)
        else reject(new Error(`unexpected address ${String(address)}`))
      })
    })
  })

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** One running example process. */
export class RunningExample {
  private out = ""
  private err = ""
  private readonly watchers = new Set<() => void>()
  /** Settles once the process has exited and its output streams are closed. */
  readonly exited: Promise<Exit>

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly port: number,
    readonly logFile: string
  ) {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.out += chunk
      this.notify()
    })
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.err += chunk
      this.notify()
    })
    this.exited = new Promise((resolve, reject) => {
      child.once("error", reject)
      child.once("close", (code, signal) => {
        this.notify()
        resolve({ code, signal, stdout: this.out, stderr: this.err })
      })
    })
    // Observed through waitForExit or cleanup; never an unhandled rejection.
    this.exited.catch(() => undefined)
  }

  get stdout(): string {
    return this.out
  }

  get stderr(): string {
    return this.err
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  private notify(): void {
    for (const watcher of this.watchers) watcher()
  }

  /**
   * Resolves with the first stdout line matching `pattern`; rejects with the process's output if
   * it exits first, or if `timeout` milliseconds pass (an upper bound for "eventually").
   */
  waitForLine(pattern: RegExp, timeout = patience): Promise<string> {
    return this.lineOrExit(pattern, timeout)
  }

  /**
   * Resolves with the process's `listening on http://127.0.0.1:<port>` line once it prints it;
   * rejects with its output if it exits first. No clock: how long a start takes depends on the
   * machine's load, and vitest's test timeout bounds a process that hangs.
   */
  waitForListening(): Promise<string> {
    return this.lineOrExit(new RegExp(`listening on http://127\\.0\\.0\\.1:${this.port}\\b`), undefined)
  }

  /**
   * Resolves with the first stdout line matching `pattern`, for a process that says it has started
   * some other way than listening (a worker with no HTTP); rejects if it exits first. No clock, as
   * in `waitForListening`.
   */
  waitForStart(pattern: RegExp): Promise<string> {
    return this.lineOrExit(pattern, undefined)
  }

  private lineOrExit(pattern: RegExp, timeout: number | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.out.split("\n").find((candidate) => pattern.test(candidate))
        if (line !== undefined) return done(() => resolve(line))
        if (!this.alive && this.child.stdout?.readableEnded !== false) {
          return done(() => reject(new Error(`${this.name} exited before printing ${pattern}\n${this.output()}`)))
        }
      }
      const timer = timeout === undefined ? undefined : setTimeout(
        () => done(() => reject(new Error(`${this.name} did not print ${pattern} within ${timeout}ms\n${this.output()}`))),
        timeout
      )
      const done = (settle: () => void) => {
        clearTimeout(timer)
        this.watchers.delete(check)
        settle()
      }
      this.watchers.add(check)
      check()
    })
  }

  /** Sends a real signal to the node process. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal)
  }

  /**
   * Waits for a process whose start is meant to fail to exit, with no clock: that takes as long as
   * a start (a failed layer build still waits for worker threads that are loading), which depends
   * on the machine's load; vitest's test timeout bounds a process that hangs.
   */
  waitForFailedStart(): Promise<Exit> {
    return this.exited
  }

  /** Waits for the process to exit on its own (an upper bound, not a threshold). */
  waitForExit(timeout = patience): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${this.name} did not exit within ${timeout}ms\n${this.output()}`)),
          timeout
        )
      })
    ]).finally(() => clearTimeout(timer))
  }

  /** The log file's lines; none if it does not exist yet. */
  async logLines(): Promise<ReadonlyArray<string>> {
    try {
      return (await readFile(this.logFile, "utf8")).split("\n").filter((line) => line !== "")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
      throw error
    }
  }

  /** Polls the log file until `predicate` holds (an upper bound, not a threshold). */
  async waitForLog(
    predicate: (lines: ReadonlyArray<string>) => boolean,
    timeout = patience
  ): Promise<ReadonlyArray<string>> {
    const deadline = Date.now() + timeout
    for (;;) {
      const lines = await this.logLines()
      if (predicate(lines)) return lines
      if (Date.now() > deadline) throw new Error(`${this.name}: log never matched; it holds ${JSON.stringify(lines)}`)
      await sleep(25)
    }
  }

  /** The `shutdown report:` line, once printed. */
  report(): string | undefined {
    return this.out.split("\n").find((line) => line.startsWith("shutdown report:"))
  }

  /** Kills the process by PID if it is still alive. */
  kill(): void {
    if (this.alive && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, "SIGKILL")
      } catch {
        // It exited in the meantime.
      }
    }
  }

  output(): string {
    return `--- stdout ---\n${this.out}--- stderr ---\n${this.err}`
  }
}

/**
 * Starts the servers in `dir` (`examples/`, or `test/fixtures/`) for one test and cleans up after
 * it: every child still alive is killed by PID and the temporary directory removed. Owned by one
 * test, so concurrent tests never touch each other's processes.
 */
export class ExampleLauncher {
  private readonly running: Array<RunningExample> = []
  private readonly dirs: Array<string> = []

  constructor(private readonly dir = "examples") {}

  /**
   * Spawns `<dir>/<name>.ts` on a free port with a fresh LOG_FILE and SQLITE_FILE (the durable
   * tasks' store) and waits until it listens (rejecting if it exits first; see `waitForListening`).
   */
  async start(name: string, env: Record<string, string> = {}): Promise<RunningExample> {
    const example = await this.spawn(name, env)
    await example.waitForListening()
    return example
  }

  /**
   * Spawns `<dir>/<name>.ts` (on `env.PORT`, or a free port) without waiting for it to listen. A
   * LOG_FILE or SQLITE_FILE in `env` (processes sharing a store and a log) replaces the fresh one.
   */
  async spawn(name: string, env: Record<string, string> = {}): Promise<RunningExample> {
    const port = env.PORT === undefined ? await freePort() : Number(env.PORT)
    const dir = await mkdtemp(join(tmpdir(), `effect-background-${name}-`))
    this.dirs.push(dir)
    const logFile = env.LOG_FILE ?? join(dir, "log.txt")
    const child = spawn(process.execPath, ["--import", "tsx", `${this.dir}/${name}.ts`], {
      cwd: root,
      env: { ...process.env, PORT: String(port), LOG_FILE: logFile, SQLITE_FILE: join(dir, "tasks.sqlite"), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const example = new RunningExample(name, child, port, logFile)
    this.running.push(example)
    return example
  }

  /** What every process printed, for a failed test's report: a start that hung shows where. */
  outputs(): string {
    return this.running
      .map((example) => {
        const { exitCode, signalCode, pid } = example.child
        return `${example.name} (pid ${pid}, exit ${exitCode ?? signalCode ?? "not yet"}):\n${example.output()}`
      })
      .join("\n")
  }

  async cleanup(): Promise<void> {
    for (const example of this.running) example.kill()
    await Promise.all(this.running.map((example) => example.exited.catch(() => undefined)))
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })))
  }
}

export const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))

export interface Response {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** One HTTP request on a fresh connection (no agent, so no pooling between tests). */
export const request = (
  port: number,
  method: string,
  path: string,
  options: { readonly agent?: Http.Agent; readonly headers?: Http.OutgoingHttpHeaders } = {}
): Promise<Response> => {
  const response = new Promise<Response>((resolve, reject) => {
    const req = Http.request(
      { host: "127.0.0.1", port, method, path, agent: options.agent ?? false, headers: options.headers ?? {} },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => (body += chunk))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end()
  })
  // A request a failed test leaves in flight must not end the run as an unhandled rejection.
  response.catch(() => undefined)
  return response
}

/**
 * A `GET` whose request head is sent only in part: the server holds the connection as busy (so
 * draining does not close it) but has not seen the request yet. `finish()` completes the head and
 * reads the answer — the request is handled at that moment, whatever phase the server is in.
 */
export const heldRequest = async (port: number, path: string): Promise<{ finish: () => Promise<Response> }> => {
  const socket = Net.connect(port, "127.0.0.1")
  let raw = ""
  socket.setEncoding("utf8").on("data", (chunk: string) => (raw += chunk))
  let failure: Error | undefined
  // Settles however the connection ends; an error is reported by `finish`, never left unhandled.
  const ended = new Promise<void>((resolve) => {
    socket.once("close", () => resolve())
    socket.on("error", (error) => (failure ??= error))
  })
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  await new Promise<void>((resolve, reject) =>
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`, (error) => (error ? reject(error) : resolve()))
  )
  return {
    finish: async () => {
      socket.write("Connection: close\r\n\r\n")
      await ended
      if (!raw.startsWith("HTTP/1.1 ")) {
        throw new Error(`connection ended without a response${failure ? `: ${failure.message}` : ""}`)
      }
      return parseResponse(raw)
    }
  }
}

const parseResponse = (raw: string): Response => {
  const [head = "", ...rest] = raw.split("\r\n\r\n")
  const [statusLine = "", ...headerLines] = head.split("\r\n")
  const status = Number(statusLine.split(" ")[1])
  const headers: Http.IncomingHttpHeaders = {}
  for (const line of headerLines) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status, headers, body: rest.join("\r\n\r\n") }
}

/**
 * Resolves once new connections to `port` are refused — the server has closed its listener, which
 * it does as the first step of draining. Proof that a signal has been taken in, without sleeping.
 */
export const waitUntilRefusing = async (port: number, timeout = patience): Promise<void> => {
  const deadline = Date.now() + timeout
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(false)
      })
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"))
    })
    if (refused) return
    if (Date.now() > deadline) throw new Error(`port ${port} still accepts connections after ${timeout}ms`)
    await sleep(20)
  }
}

/**
 * A launcher of its own for one test, cleaned up (children killed by PID) when it ends, pass or
 * fail — a timeout included; when the test fails, what its processes printed is written to stderr.
 */
export const ownLauncher = (dir: string) => async (
  { onTestFailed }: TestContext,
  use: (launcher: ExampleLauncher) => Promise<void>
) => {
  const launcher = new ExampleLauncher(dir)
  onTestFailed(() => {
    process.stderr.write(`processes of the failed test:\n${launcher.outputs()}\n`)
  })
  try {
    await use(launcher)
  } finally {
    await launcher.cleanup()
  }
}

/** A vitest `test` whose `examples` fixture is a launcher of its own for `examples/`. */
export const exampleTest = base.extend<{ examples: ExampleLauncher }>({ examples: ownLauncher("examples") })

/** The shape of the one-line shutdown report. */
export const reportShape =
  /^shutdown report: requests drained=\d+ interrupted=\d+; tasks finished=\d+ failed=\d+ interrupted=\d+ rejected=\d+ skipped=\d+; jobs stopped=\d+ failures=\d+; phases drain=\d+ms grace=\d+ms interrupt=\d+ms(?: offload=\d+ms)? services=\d+ms total=\d+ms/

/** Waits for a clean exit and returns the report line, after checking its shape. */
export const expectCleanExit = async (example: RunningExample): Promise<string> => {
  const exit = await example.waitForExit()
  expect(exit.code, example.output()).toBe(0)
  expect(exit.signal).toBeNull()
  const report = example.report()
  expect(report, example.output()).toMatch(reportShape)
  return report ?? ""
}


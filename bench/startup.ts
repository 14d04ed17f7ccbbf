/**
 * Startup (`npm run bench:startup`): how long a server takes from `spawn` to the `listening on`
 * line it prints once it accepts connections — `npm start` (`node --import tsx
 * examples/server.ts`: every kind of work, with an offload pool thread and an isolate thread that
 * must load before it listens), `examples/notify.ts` (no worker thread), and the same two compiled
 * by `tsc` and run by plain `node`, the production path.
 *
 * Unlike the other benchmarks, the children run under tsx on purpose: what `npm start` costs a
 * developer is the figure. Each run is a fresh child on a free port, killed (SIGKILL, by its own
 * pid) once it has printed the line; the commands take turns, one child at a time, each round
 * starting with a different one. Also printed: the time to the child's first output, which for
 * examples/server.ts is its banner, written once its modules are loaded (the rest is the layers'
 * build: the worker threads loading, the socket). BENCH_STARTUP_BASELINE, a path to another
 * checkout of the project (with its node_modules), adds its two tsx commands to the rounds, for a
 * before/after in one run.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { awaitExit, freePort, machine, median, track, verdict } from "./support.js"

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5)
const BASELINE = process.env.BENCH_STARTUP_BASELINE
/** What `npm start` must stay within on an idle machine (issue 10). */
const GOAL_MILLIS = 3000
/** A start that takes longer than this is reported as a failure (a bound, not a threshold). */
const GIVE_UP_MILLIS = 120_000

const root = fileURLToPath(new URL("..", import.meta.url))

interface Command {
  readonly label: string
  readonly cwd: string
  readonly args: ReadonlyArray<string>
}

interface Sample {
  readonly listening: number
  readonly firstOutput: number
}

/** Compiles src/ and examples/ with the build's options into a folder under node_modules (so `effect` resolves). */
const compile = async (): Promise<string> => {
  const out = await mkdtemp(join(root, "node_modules", ".bench-startup-"))
  const config = join(out, "tsconfig.json")
  await writeFile(
    config,
    JSON.stringify({
      extends: join(root, "tsconfig.build.json"),
      compilerOptions: { rootDir: root, outDir: out, declaration: false, declarationMap: false, sourceMap: false },
      include: [join(root, "src"), join(root, "examples")]
    })
  )
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", config], { cwd: root, stdio: "inherit" })
  await writeFile(join(out, "package.json"), JSON.stringify({ type: "module" }))
  return out
}

/** One start: spawn, wait for `listening on http://127.0.0.1:<port>`, kill. */
const startOnce = async (command: Command, logDir: string): Promise<Sample> => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, command.args, {
    cwd: command.cwd,
    env: { ...process.env, PORT: String(port), LOG_FILE: join(logDir, "log.txt") },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const running = track(child)
  const line = `listening on http://127.0.0.1:${port}`
  try {
    return await new Promise<Sample>((resolve, reject) => {
      let output = ""
      let firstOutput: number | undefined
      const timer = setTimeout(() => reject(new Error(`${command.label}: not listening after ${GIVE_UP_MILLIS}ms\n${output}`)), GIVE_UP_MILLIS)
      child.stdout?.on("data", (chunk: string | Buffer) => {
        const now = performance.now()
        firstOutput ??= now - started
        output += String(chunk)
        if (output.includes(line)) {
          clearTimeout(timer)
          resolve({ listening: now - started, firstOutput })
        }
      })
      child.stderr?.on("data", (chunk: string | Buffer) => {
        output += String(chunk)
      })
      child.once("exit", (code) => {
        clearTimeout(timer)
        reject(new Error(`${command.label}: exited with ${code} before listening\n${output}`))
      })
    })
  } finally {
    child.kill("SIGKILL")
    await awaitExit(running, 10_000).catch(() => undefined)
  }
}

const commit = (cwd: string): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd, encoding: "utf8" }).trim()
    return dirty === "" ? head : `${head} with uncommitted changes`
  } catch {
    return "unknown"
  }
}

const main = async () => {
  console.log(machine())
  console.log(`library at commit ${commit(root)}${BASELINE === undefined ? "" : `; baseline ${BASELINE} at ${commit(BASELINE)}`}`)
  const compiled = await compile()
  const logDir = await mkdtemp(join(tmpdir(), "bench-startup-"))
  const commands: Array<Command> = [
    { label: "node --import tsx examples/server.ts (npm start)", cwd: root, args: ["--import", "tsx", "examples/server.ts"] },
    { label: "node --import tsx examples/notify.ts", cwd: root, args: ["--import", "tsx", "examples/notify.ts"] },
    { label: "node examples/server.js (compiled)", cwd: compiled, args: ["examples/server.js"] },
    { label: "node examples/notify.js (compiled)", cwd: compiled, args: ["examples/notify.js"] }
  ]
  if (BASELINE !== undefined) {
    commands.push(
      { label: "baseline: node --import tsx examples/server.ts", cwd: BASELINE, args: ["--import", "tsx", "examples/server.ts"] },
      { label: "baseline: node --import tsx examples/notify.ts", cwd: BASELINE, args: ["--import", "tsx", "examples/notify.ts"] }
    )
  }
  const samples = new Map<Command, Array<Sample>>(commands.map((command) => [command, []]))
  try {
    // One untimed start of each first: tsx's transform cache and the disk cache are warm for all.
    for (const command of commands) await startOnce(command, logDir)
    for (let round = 0; round < RUNS; round++) {
      for (let i = 0; i < commands.length; i++) {
        const command = commands[(round + i) % commands.length]!
        samples.get(command)!.push(await startOnce(command, logDir))
      }
    }
  } finally {
    await rm(compiled, { recursive: true, force: true })
    await rm(logDir, { recursive: true, force: true })
  }

  console.log(`\n#### Spawn → \`listening on\` (${RUNS} runs each after one untimed start, taking turns, one child at a time)\n`)
  console.log("| command | median ms | min ms | max ms | first output, median ms | runs (ms) |")
  console.log("|---|---|---|---|---|---|")
  for (const command of commands) {
    const runs = samples.get(command)!
    const times = runs.map((sample) => sample.listening)
    console.log(
      `| ${command.label} | ${median(times).toFixed(0)} | ${Math.min(...times).toFixed(0)} | ${Math.max(...times).toFixed(0)} | ` +
        `${median(runs.map((sample) => sample.firstOutput)).toFixed(0)} | ${times.map((t) => t.toFixed(0)).join(", ")} |`
    )
  }
  const npmStart = median(samples.get(commands[0]!)!.map((sample) => sample.listening))
  console.log(
    `\nnpm start to listening, median: ${npmStart.toFixed(0)} ms (goal ≤ ${GOAL_MILLIS} ms on an idle machine) ${verdict(npmStart <= GOAL_MILLIS)}`
  )
  console.log(machine())
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})

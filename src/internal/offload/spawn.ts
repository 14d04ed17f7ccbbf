/**
 * Starting a worker thread that runs our bootstrap, which then imports the user's worker module.
 * `.ts` modules (development under tsx, tests) get tsx's loader registered inside the worker first,
 * so the call site is the same for `.ts` sources and compiled `.js`.
 */
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"
import type { SerializedDefect } from "./protocol.js"

const isTypeScript = (url: string) => /\.[cm]?ts$/.test(new URL(url).pathname)

const bootstrapUrl = new URL(
  `./worker-main.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`,
  import.meta.url
).href

let tsxLoader: string | undefined
const resolveTsx = (): string => {
  if (tsxLoader === undefined) {
    const require = createRequire(import.meta.url)
    try {
      // require.resolve picks the CommonJS build; the worker needs the ESM one beside it.
      tsxLoader = pathToFileURL(require.resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href
    } catch {
      throw new Error("running a .ts worker module needs the \"tsx\" package installed (or point at compiled .js)")
    }
  }
  return tsxLoader
}

/**
 * What the bootstrap imports from effect (with what those import, about 430 modules, most of the
 * thread's load). A thread that registers tsx imports them first, by their resolved URLs: tsx's
 * loader hooks, once registered, see every module loaded after them, which doubled the time a
 * thread took to become ready. A module missing here only loads through the hooks, a bit slower.
 */
const bootstrapDependencies = [
  "effect/Cause",
  "effect/Effect",
  "effect/Either",
  "effect/Exit",
  "effect/Fiber",
  "effect/Option",
  "effect/ParseResult",
  "effect/Predicate",
  "effect/Queue",
  "effect/Schema",
  "effect/SchemaAST"
]

let preloads: ReadonlyArray<string> | undefined
/**
 * The bootstrap's dependencies as the URLs its own imports resolve to (same package, same
 * conditions), or none where `import.meta.resolve` is missing (Node before 20.6, vitest).
 */
const resolvePreloads = (): ReadonlyArray<string> => {
  if (preloads === undefined) {
    try {
      preloads = typeof import.meta.resolve === "function"
        ? bootstrapDependencies.map((specifier) => import.meta.resolve(specifier))
        : []
    } catch {
      preloads = []
    }
  }
  return preloads
}

// Eval'd workers start as CommonJS; this shim registers tsx when needed and loads the bootstrap.
const shim = `
const { workerData } = require("node:worker_threads");
(async () => {
  for (const url of workerData.preload) await import(url);
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.bootstrap);
})().catch((error) => {
  const { parentPort } = require("node:worker_threads");
  parentPort.postMessage({ _tag: "LoadError", error: { name: error?.name ?? "Error", message: String(error?.message ?? error), stack: error?.stack } });
});
`

export interface SpawnOptions {
  /** File URL of the user's worker module, if any. */
  readonly module: string | undefined
  readonly maxHeapMb: number | undefined
  readonly name: string
  /** What the module's default export must be: tasks for a pool, a program for an isolate. */
  readonly kind: "tasks" | "isolate"
  /** The job claim cells shared with a pool worker (see `CellState`). */
  readonly cells?: SharedArrayBuffer | undefined
}

/** Resolves a module path or URL to a file URL string. */
export const toModuleUrl = (module: string | URL): string =>
  module instanceof URL ? module.href : /^[a-z]+:/i.test(module) ? module : pathToFileURL(module).href

export const spawnWorker = (options: SpawnOptions): Worker => {
  const needsTsx = isTypeScript(bootstrapUrl) || (options.module !== undefined && isTypeScript(options.module))
  return new Worker(shim, {
    eval: true,
    name: options.name,
    workerData: {
      bootstrap: bootstrapUrl,
      module: options.module,
      kind: options.kind,
      cells: options.cells,
      tsx: needsTsx ? resolveTsx() : undefined,
      preload: needsTsx ? resolvePreloads() : []
    },
    ...(options.maxHeapMb !== undefined
      ? { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb, maxYoungGenerationSizeMb: Math.min(16, Math.max(1, Math.floor(options.maxHeapMb / 4))) } }
      : {}),
    stdout: false,
    stderr: false
  })
}

/** Why a worker that was still loading is gone: it did not say it was ready in time. */
export const startupTimedOut = (timeoutMillis: number): SerializedDefect => ({
  name: "Error",
  message: `the worker did not become ready within ${timeoutMillis}ms (startupTimeout); ` +
    "if the module is only slow to load (a loaded machine, a large module), raise startupTimeout",
  stack: undefined
})

/**
 * Why a worker that was still loading is gone, from its exit code and the last `error` event its
 * thread emitted (an out-of-memory one gets advice on `maxHeapMb`). Pools and isolates say the same.
 */
export const startupExited = (
  exitCode: number,
  lastError: (Error & { code?: string }) | undefined,
  maxHeapMb: number | undefined
): SerializedDefect => ({
  name: "Error",
  message: lastError?.code === "ERR_WORKER_OUT_OF_MEMORY"
    ? `it ran out of memory while loading (maxHeapMb: ${maxHeapMb}); raise maxHeapMb`
    : lastError?.message ?? `the worker exited with code ${exitCode} while starting`,
  stack: lastError?.stack
})

/** How long {@link stopWorker} waits for a terminated thread to stop. */
const STOP_WAIT_MILLIS = 1000

/**
 * Terminates a worker and waits for its thread to stop — for at most a second: a thread blocked in
 * native code (`execSync`, a read that does not return) stops only when that call returns, and
 * neither a cancellation nor a shutdown may hang on it.
 */
export const stopWorker = (worker: Worker): Promise<void> => {
  const stopped = worker.terminate()
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, STOP_WAIT_MILLIS)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    stopped.then(done, done)
  })
}

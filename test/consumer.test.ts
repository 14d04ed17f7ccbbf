/**
 * A new user's path, taken from docs/getting-started.md itself so that the guide and the package
 * cannot drift apart: `npm pack` this repository, make a new project in a temporary folder, run the
 * guide's install commands (with the tarball in place of the registry's `effect-background`), write
 * the guide's `tsconfig.json` and `server.ts` as printed, type-check and compile them with the
 * guide's command, run the server both ways the guide shows, send the guide's request, stop it, and
 * read the report line. Also: an install from a git URL carries a built `dist/` with types.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect } from "vitest"
import { reportShape } from "./support/process-example.js"
import { isAlive, jobTest } from "./support/process-group.js"

const run = promisify(execFile)
const root = fileURLToPath(new URL("..", import.meta.url))
const guidePath = join(root, "docs/getting-started.md")

/** A fenced code block of the guide, with the `## ` section it stands in. */
interface Block {
  readonly section: string
  readonly lang: string
  readonly code: string
}

const blocksOf = (markdown: string): ReadonlyArray<Block> => {
  const blocks: Array<Block> = []
  let section = ""
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ""
    if (line.startsWith("## ")) section = line.slice(3).trim()
    const fence = /^```(\w*)/.exec(line)
    if (fence === null) continue
    const code: Array<string> = []
    for (i++; i < lines.length && !(lines[i] ?? "").startsWith("```"); i++) code.push(lines[i] ?? "")
    blocks.push({ section, lang: fence[1] ?? "", code: code.join("\n") + "\n" })
  }
  return blocks
}

/** The one block of `lang` in `section` whose code matches `pattern`. */
const blockIn = (blocks: ReadonlyArray<Block>, section: string, lang: string, pattern = /[\s\S]/): string => {
  const found = blocks.filter((block) => block.section === section && block.lang === lang && pattern.test(block.code))
  if (found.length !== 1) throw new Error(`the guide has ${found.length} ${lang} blocks matching ${pattern} under "## ${section}"`)
  return found[0]?.code ?? ""
}

/** The commands of a shell block: one a line, comments dropped. */
const commandsOf = (code: string): ReadonlyArray<string> =>
  code.split("\n").map((line) => line.replace(/\s+#.*$/, "").trim()).filter((line) => line !== "" && !line.startsWith("#"))

const shell = (command: string, cwd: string) =>
  run("sh", ["-c", command], {
    cwd,
    // The registry is reached as in a user's install; packages already in npm's cache come from it.
    env: { ...process.env, npm_config_prefer_offline: "true", npm_config_fund: "false", npm_config_audit: "false" },
    maxBuffer: 64 * 1024 * 1024
  })

const test = jobTest

const guide = blocksOf(await readFile(guidePath, "utf8"))
const install = commandsOf(blockIn(guide, "Install", "sh"))
const tsconfig = blockIn(guide, "Install", "json")
const server = blockIn(guide, "A first server", "ts")
const development = commandsOf(blockIn(guide, "Run it", "sh", /npx tsx/))
const signup = commandsOf(blockIn(guide, "Run it", "sh", /curl/))
const production = commandsOf(blockIn(guide, "Run it", "sh", /npx tsc/))

let scratch = ""
let project = ""
let tarball = ""

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "effect-background-consumer-"))
  // `npm pack` runs the package's `prepare` build: what a user installs is what it packs.
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  const packed = JSON.parse(stdout.slice(stdout.indexOf("["))) as ReadonlyArray<{ readonly filename: string }>
  tarball = join(scratch, packed[0]?.filename ?? "")
  project = join(scratch, "my-server")
  await run("mkdir", [project])
  for (const command of install) {
    await shell(command.replace(/(?<=\s)effect-background(?=\s|$)/, tarball), project)
  }
  await writeFile(join(project, "tsconfig.json"), tsconfig)
  await writeFile(join(project, "server.ts"), server)
}, 300_000)

afterAll(async () => {
  if (scratch !== "") await rm(scratch, { recursive: true, force: true })
})

describe("the getting-started guide, followed in a new project", () => {
  test("its install line takes the package and the Effect 3 line, with no ERESOLVE and no flags", async () => {
    expect(install.some((command) => / effect-background(\s|$)/.test(command))).toBe(true)
    const manifest = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as {
      readonly type?: string
      readonly dependencies?: Record<string, string>
    }
    expect(manifest.type).toBe("module")
    expect(manifest.dependencies?.effect).toMatch(/^\^3\./)
    // Every copy of effect in the tree is Effect 3, and the library's types came with it.
    const { stdout } = await run("npm", ["ls", "--all", "--json", "effect"], { cwd: project, maxBuffer: 64 * 1024 * 1024 })
    const versions = [...stdout.matchAll(/"effect": \{\s*"version": "([^"]+)"/g)].map((match) => match[1])
    expect(versions.length).toBeGreaterThan(0)
    for (const version of versions) expect(version).toMatch(/^3\./)
    expect(existsSync(join(project, "node_modules/effect-background/dist/index.js"))).toBe(true)
    expect(existsSync(join(project, "node_modules/effect-background/dist/index.d.ts"))).toBe(true)
  })

  test("its production path: npx tsc type-checks under the guide's tsconfig, node runs the output, SIGTERM drains and exits 0", async ({ jobs }) => {
    expect(production[0]).toBe("npx tsc")
    const [compile = "", start = ""] = production
    await shell(compile, project)
    expect(existsSync(join(project, "dist/server.js"))).toBe(true)

    const [command = "", ...args] = start.split(" ")
    const app = await jobs.spawn("consumer-node", command === "node" ? process.execPath : command, args, { cwd: project })
    await app.waitForLine(new RegExp(`listening on http://127\\.0\\.0\\.1:${app.port}\\b`))
    const answer = await shell(signup[0]?.replace("127.0.0.1:3000", `127.0.0.1:${app.port}`) ?? "", project)
    expect(JSON.parse(answer.stdout)).toEqual({ ok: true })
    // The email takes a second: it is still being sent when the signal comes.
    app.signal("SIGTERM")

    const exit = await app.exited
    expect(exit.code, app.output()).toBe(0)
    expect(app.report(), app.output()).toMatch(reportShape)
    expect(app.report()).toMatch(/tasks finished=2 failed=0 interrupted=0 .*jobs stopped=1 failures=0/)
    expect(app.stdout).toContain("welcome email sent to ada@example.com")
    expect(app.stdout).toContain("analytics: ada@example.com signed up")
  })

  test("the guide's promise that a job calling BackgroundTasks.add does not compile holds for the published types", async () => {
    const dir = join(project, "misuse")
    await run("mkdir", ["-p", dir])
    // The guide's server with its heartbeat turned into a job that adds an after-response task.
    const misuse = server.replace(
      /Background\.every\(Effect\.log\("still alive"\)/,
      'Background.every(BackgroundTasks.add(Effect.log("still alive"))'
    )
    expect(misuse).not.toBe(server)
    await writeFile(join(dir, "server.ts"), misuse)
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", compilerOptions: { noEmit: true }, include: ["server.ts"] }))
    const failure = await shell("npx tsc -p misuse", project).then(() => undefined, (error: { readonly stdout?: string }) => error)
    expect(failure, "tsc accepted a job that calls BackgroundTasks.add").toBeDefined()
    expect(failure?.stdout).toMatch(/server\.ts\(\d+,\d+\): error TS2345: .*HttpServerRequest/)
  })

  test("its development path: npx tsx runs server.ts, and Ctrl-C (SIGINT to the process group) drains", async ({ jobs }) => {
    expect(development).toEqual(["npx tsx server.ts"])
    const [command = "", ...args] = development[0]?.split(" ") ?? []
    const app = await jobs.spawn("consumer-tsx", command, args, { cwd: project })
    await app.waitForLine(new RegExp(`listening on http://127\\.0\\.0\\.1:${app.port}\\b`))
    const server = await app.serverPid("server.ts")
    const answer = await shell(signup[0]?.replace("127.0.0.1:3000", `127.0.0.1:${app.port}`) ?? "", project)
    expect(JSON.parse(answer.stdout)).toEqual({ ok: true })
    app.signalGroup("SIGINT")

    await app.exited
    expect(app.stderr).not.toContain("shutdown aborted")
    expect(app.report(), app.output()).toMatch(reportShape)
    expect(app.report()).toMatch(/tasks finished=2 failed=0 interrupted=0 .*jobs stopped=1 failures=0/)
    expect(app.stdout).toContain("welcome email sent to ada@example.com")
    expect(isAlive(server), `server ${server} outlived npx`).toBe(false)
  })
})

describe("an install from a git URL", () => {
  const repository = existsSync(join(root, ".git"))
  test.skipIf(!repository)("builds dist/ with types through the prepare script (the committed HEAD)", async () => {
    const dir = join(scratch, "from-git")
    await run("mkdir", [dir])
    await shell("npm init -y && npm pkg set type=module", dir)
    await shell(`npm install git+file://${root} effect@3 @effect/platform@0.97 @effect/platform-node@0.108`, dir)
    const installed = join(dir, "node_modules/effect-background")
    expect(existsSync(join(installed, "dist/index.js"))).toBe(true)
    expect(existsSync(join(installed, "dist/Server.d.ts"))).toBe(true)
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", "const m = await import('effect-background'); console.log(Object.keys(m).join(','))"], { cwd: dir })
    expect(stdout.trim().split(",")).toEqual(expect.arrayContaining(["Background", "BackgroundTasks", "InvalidOptionError", "Offload", "Server"]))
  }, 300_000)
})

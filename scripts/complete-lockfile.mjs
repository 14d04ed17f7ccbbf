// Adds lockfile entries for the other platforms' builds of optional native packages (rollup,
// msgpackr-extract, ...). The registry this project is developed against serves only the current
// platform's builds, so `npm install` leaves those entries out and `npm ci` then refuses the
// lockfile as out of sync. Each added entry names its os/cpu/libc, so `npm ci` skips it without
// fetching anything. Run after changing dependencies: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from "node:fs"

const OS = ["aix", "android", "darwin", "freebsd", "linux", "netbsd", "openbsd", "openharmony", "sunos", "win32"]
const CPU = ["arm", "arm64", "ia32", "loong64", "mips64el", "ppc64", "riscv64", "s390x", "x64", "universal"]

const path = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const added = []
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const target = `node_modules/${name}`
    if (lock.packages[target] !== undefined || lock.packages[`${key}/${target}`] !== undefined) continue
    const tokens = name.split("/").pop().split("-")
    const os = tokens.find((token) => OS.includes(token))
    const cpu = tokens.find((token) => CPU.includes(token))
    if (os === undefined || cpu === undefined) continue
    const libc = tokens.some((token) => token.startsWith("musl")) ? "musl" : tokens.some((token) => token.startsWith("gnu")) ? "glibc" : undefined
    lock.packages[target] = {
      version,
      cpu: cpu === "universal" ? ["arm64", "x64"] : [cpu],
      ...(entry.dev ? { dev: true } : {}),
      ...(libc !== undefined && os === "linux" ? { libc: [libc] } : {}),
      optional: true,
      os: [os]
    }
    added.push(`${name}@${version}`)
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)))
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(added.length === 0 ? "lockfile complete" : `added ${added.length} entries:\n  ${added.join("\n  ")}`)

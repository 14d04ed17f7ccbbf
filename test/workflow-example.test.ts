/**
 * examples/workflow.ts as a real process: a flow cut off by a crash after its second step resumes,
 * when the process starts again on the same store, at its third step — the first two are not run
 * again — and the restarted process drains and exits 0 on SIGTERM.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect } from "vitest"
import { exampleTest, expectCleanExit, patience, request, sleep } from "./support/process-example.js"

exampleTest("a flow cut off by a crash resumes after its last completed step", async ({ examples, onTestFinished }) => {
  const folder = await mkdtemp(join(tmpdir(), "workflow-example-"))
  onTestFinished(() => rm(folder, { recursive: true, force: true }))
  const logFile = join(folder, "steps.txt")
  const store = { SQLITE_FILE: join(folder, "workflows.sqlite"), LOG_FILE: logFile }

  const first = await examples.start("workflow", { ...store, CRASH_AFTER: "charge" })
  const accepted = await request(first.port, "POST", "/orders/o-1")
  expect(accepted.status).toBe(202)
  const crashed = await first.waitForExit()
  expect(crashed.code, first.output()).toBe(9)
  expect(await readFile(logFile, "utf8")).toBe("reserve o-1\ncharge o-1\n")

  // No request starts it again: the engine finds the unfinished flow in the store.
  const second = await examples.start("workflow", store)
  const deadline = Date.now() + patience
  let state = ""
  while (Date.now() < deadline) {
    state = (JSON.parse((await request(second.port, "GET", "/orders/o-1")).body) as { state: string }).state
    if (state === "done") break
    await sleep(50)
  }
  expect(state, second.output()).toBe("done")
  expect(await readFile(logFile, "utf8")).toBe("reserve o-1\ncharge o-1\nship o-1\n")
  // starting the same order again is the same flow: nothing runs twice
  expect((await request(second.port, "POST", "/orders/o-1")).status).toBe(202)
  expect(JSON.parse((await request(second.port, "GET", "/orders/o-1")).body)).toEqual({ state: "done" })
  second.signal("SIGTERM")
  await expectCleanExit(second)
  expect(await readFile(logFile, "utf8")).toBe("reserve o-1\ncharge o-1\nship o-1\n")
})

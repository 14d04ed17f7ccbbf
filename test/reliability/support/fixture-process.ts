/**
 * Runs a fixture server (`test/fixtures/<name>.ts`) as a real node process, as the example tests
 * do with `examples/*.ts`: a free port, a fresh LOG_FILE, real signals, and every child killed by
 * PID when its test ends.
 */
import { test as base } from "vitest"
import { type ExampleLauncher, ownLauncher } from "../../support/process-example.js"

/** A vitest `test` with a `fixtures` launcher of its own for `test/fixtures/`, cleaned up when the test ends. */
export const fixtureTest = base.extend<{ fixtures: ExampleLauncher }>({ fixtures: ownLauncher("test/fixtures") })

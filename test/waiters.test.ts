/** The internal list of fibers waiting for "idle" (no request in flight, no pending task…). */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import { Waiters } from "../src/internal/background/waiters.js"

describe("Waiters", () => {
  it.effect("releases every waiter at the check that finds the condition holding, not before", () =>
    Effect.gen(function*() {
      let busy = true
      const waiters = new Waiters(() => !busy)
      const first = yield* Effect.fork(waiters.await)
      const second = yield* Effect.fork(waiters.await)
      yield* Effect.yieldNow()
      expect(waiters.size).toBe(2)
      waiters.check()
      expect(Option.isNone(yield* Fiber.poll(first))).toBe(true)
      busy = false
      waiters.check()
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(waiters.size).toBe(0)
    }))

  it.effect("a wait that times out or is interrupted leaves nothing behind", () =>
    Effect.gen(function*() {
      const waiters = new Waiters(() => false)
      const timedOut = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 1000 }), () => Effect.timeoutOption(waiters.await, "1 millis"), { discard: true })
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(timedOut)
      const interrupted = yield* Effect.fork(waiters.await)
      yield* Effect.yieldNow()
      expect(waiters.size).toBe(1)
      yield* Fiber.interrupt(interrupted)
      expect(waiters.size).toBe(0)
    }))
})

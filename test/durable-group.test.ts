/**
 * The store's statement groups (src/internal/durable/group.ts): calls made in one turn of the event
 * loop run as one, each caller learns its group's outcome, and nothing gathered is dropped when
 * the store's scope closes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Group from "../src/internal/durable/group.js"

const recorder = (fail: (items: ReadonlyArray<number>) => boolean = () => false) => {
  const runs: Array<ReadonlyArray<number>> = []
  const run = (items: ReadonlyArray<number>) =>
    Effect.suspend(() => {
      runs.push(items)
      return fail(items) ? Effect.fail(`group ${items.join(",")} failed`) : Effect.void
    })
  return { runs, run }
}

describe("durable statement groups", () => {
  it.live("calls made in one turn run as one group, in order, and each caller waits for it", () =>
    Effect.gen(function*() {
      const { run, runs } = recorder()
      const scope = yield* Scope.make()
      const group = yield* Group.make(run, () => "closed").pipe(Scope.extend(scope))
      const done = yield* Effect.all([1, 2, 3].map((n) => group.submit(n)), { concurrency: "unbounded" })
      expect(done).toEqual([undefined, undefined, undefined])
      expect(runs).toEqual([[1, 2, 3]])
      // a later turn: a group of its own
      yield* group.submit(4)
      expect(runs).toEqual([[1, 2, 3], [4]])
      yield* Scope.close(scope, Exit.void)
    }))

  it.live("a failed group fails each of its callers, and the next group is not affected", () =>
    Effect.gen(function*() {
      const { run } = recorder((items) => items.includes(2))
      const scope = yield* Scope.make()
      const group = yield* Group.make(run, () => "closed").pipe(Scope.extend(scope))
      const exits = yield* Effect.all([1, 2].map((n) => Effect.exit(group.submit(n))), { concurrency: "unbounded" })
      expect(exits).toEqual([Exit.fail("group 1,2 failed"), Exit.fail("group 1,2 failed")])
      expect(yield* Effect.exit(group.submit(3))).toEqual(Exit.void)
      yield* Scope.close(scope, Exit.void)
    }))

  it.live("what is gathered when the scope closes still runs; later calls are refused", () =>
    Effect.gen(function*() {
      const { run, runs } = recorder()
      const scope = yield* Scope.make()
      const group = yield* Group.make(run, () => "closed").pipe(Scope.extend(scope))
      // posted, then the scope closes in the same turn, before the group would have started
      expect(group.post(1)).toBe(true)
      expect(group.post(2)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(runs).toEqual([[1, 2]])
      expect(group.post(3)).toBe(false)
      expect(yield* Effect.exit(group.submit(4))).toEqual(Exit.fail("closed"))
      // nothing runs later either
      yield* Effect.sleep("20 millis")
      expect(runs).toEqual([[1, 2]])
    }))

  it.live("more than 500 calls in one turn run as groups of at most 500", () =>
    Effect.gen(function*() {
      const { run, runs } = recorder()
      const scope = yield* Scope.make()
      const group = yield* Group.make(run, () => "closed").pipe(Scope.extend(scope))
      yield* Effect.all(Array.from({ length: 1200 }, (_, n) => group.submit(n)), { concurrency: "unbounded" })
      expect(runs.map((items) => items.length)).toEqual([500, 500, 200])
      expect(runs.flat()).toEqual(Array.from({ length: 1200 }, (_, n) => n))
      yield* Scope.close(scope, Exit.void)
    }))
})

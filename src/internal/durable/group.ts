/**
 * Statements gathered over one turn of the event loop and run as one. Most of a write's cost is
 * its commit (measured on SQLite here: about 130 µs for a one-row insert, about 400 µs for one of
 * ten rows), so the writes that requests make while the server reads a burst of them share a
 * statement: each caller still waits for its own rows to be committed, and a failure is each
 * caller's failure.
 *
 * A group is started once the loop turn's I/O has been handled (`setImmediate`), in a fiber of the
 * store's scope; groups do not wait for each other (a pool of connections runs them side by side).
 * When the scope closes, what is gathered and not yet started is run first; a call made after
 * that fails with `closed()`.
 */
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"

export interface Group<A, E> {
  /** Adds `item` to the group being gathered and waits until its group has run. */
  readonly submit: (item: A) => Effect.Effect<void, E>
  /**
   * Adds `item` to the group being gathered, without waiting (failures are `run`'s to report);
   * false, with nothing added, once the scope is closing.
   */
  readonly post: (item: A) => boolean
}

/** Largest group run as one statement: the rest go in the next. */
const MAX_GROUP = 500

type Resume<E> = (result: Effect.Effect<void, E>) => void

export const make = <A, E>(
  run: (items: ReadonlyArray<A>) => Effect.Effect<void, E>,
  closed: () => E
): Effect.Effect<Group<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    let gathered: Array<readonly [A, Resume<E>]> = []
    let scheduled = false
    let open = true

    // A group, once started, runs to its end: the scope's close waits for it.
    const runGroup = (group: ReadonlyArray<readonly [A, Resume<E>]>) =>
      run(group.map(([item]) => item)).pipe(
        Effect.matchCause({
          onSuccess: () => {
            for (const [, resume] of group) resume(Effect.void)
          },
          onFailure: (cause) => {
            for (const [, resume] of group) resume(Effect.failCause(cause))
          }
        }),
        Effect.uninterruptible
      )

    /** Takes what was gathered, in groups of at most MAX_GROUP. */
    const drain = () => {
      const groups: Array<Effect.Effect<void>> = []
      for (let index = 0; index < gathered.length; index += MAX_GROUP) {
        groups.push(runGroup(gathered.slice(index, index + MAX_GROUP)))
      }
      gathered = []
      return groups
    }

    const start = () => {
      scheduled = false
      if (open) for (const group of drain()) runFork(group)
    }

    const gather = (item: A, resume: Resume<E>) => {
      gathered.push([item, resume])
      if (!scheduled) {
        scheduled = true
        setImmediate(start)
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        open = false
        return Effect.all(drain(), { discard: true })
      })
    )

    return {
      submit: (item) =>
        Effect.async<void, E>((resume) => {
          if (open) gather(item, resume)
          else resume(Effect.fail(closed()))
        }),
      post: (item) => {
        if (!open) return false
        gather(item, () => {})
        return true
      }
    }
  })

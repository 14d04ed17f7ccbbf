/**
 * Plain callbacks as tasks — `async (signal) => ...`, the Promise API's task bodies. As an effect
 * ({@link fromCallback}) a callback runs anywhere an effect does; a runner fiber recognises one
 * ({@link callbackOf}) and calls it directly, without the effects around it (runners.ts).
 *
 * Either way: the callback is given an AbortSignal, aborted when the task is interrupted; the
 * task then waits for the callback to settle, so a callback that stops on its signal ends as
 * interrupted, and one that ignores it keeps the task alive until the supervisor's interrupt
 * timeout, which names it in the report. A rejection or a throw is the task's failure.
 *
 * A callback that declares no parameter (`length` 0, as `async () => ...`) is called with none,
 * and no signal is made for it: on Node 20 each AbortSignal costs about 2.6 µs to make and, worse,
 * the young-generation collector promotes it and what it reaches (measured: a million signals
 * made one after another promoted 3.8 MB per scavenge; a loop of no-op after-response tasks on the
 * Promise API promoted about 1 MB per scavenge with a signal each, and nothing without). Test
 * runners tell a `done` callback by the same `length`. A function with only a rest parameter
 * (`(...args) => f(...args)`) has `length` 0 too: such a wrapper must declare the signal to pass
 * it on.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** A task's body as the Promise API takes it. */
export type Callback<A = unknown> = (signal: AbortSignal) => PromiseLike<A> | A

const callbackKey: unique symbol = Symbol.for("effect-background/callback")

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === "object" || typeof value === "function") && value !== null &&
  typeof (value as { readonly then?: unknown }).then === "function"

/**
 * A callback called: given its signal (when it declares one), settled at once when it returns a
 * value or throws, or when its promise settles. One waiter is told how it settled (a later one
 * replaces an earlier).
 */
export class Call {
  /** The signal's controller: only for a callback that declares a parameter. */
  private readonly controller: AbortController | undefined
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  private waiter: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined = undefined

  /** Called directly, not from a promise's executor: no promise of ours around the callback. */
  constructor(callback: Callback) {
    let result: unknown
    try {
      if (callback.length === 0) {
        result = (callback as () => unknown)()
      } else {
        this.controller = new AbortController()
        result = callback(this.controller.signal)
      }
    } catch (error) {
      this.exit = Exit.fail(error)
      return
    }
    if (!isThenable(result)) this.exit = Exit.succeed(result)
    else result.then((value) => this.settle(Exit.succeed(value)), (error: unknown) => this.settle(Exit.fail(error)))
  }

  /** Aborts the callback's signal (a callback given none can only be waited for). */
  abort(): void {
    this.controller?.abort()
  }

  /** Calls `waiter` once the callback has settled: now, if it has. */
  onSettled(waiter: (exit: Exit.Exit<unknown, unknown>) => void): void {
    if (this.exit !== undefined) waiter(this.exit)
    else this.waiter = waiter
  }

  private settle(exit: Exit.Exit<unknown, unknown>): void {
    this.exit = exit
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(exit)
  }
}

/** A callback as an effect (see the module's description). */
export const fromCallback = <A>(callback: Callback<A>): Effect.Effect<A, unknown> => {
  const effect = Effect.async<A, unknown>((resume) => {
    const call = new Call(callback)
    // (the exit holds the callback's own value, an A)
    call.onSettled((exit) => resume(exit as Exit.Exit<A, unknown>))
    if (call.exit !== undefined) return
    return Effect.async<void>((stopped) => {
      call.abort()
      call.onSettled(() => stopped(Effect.void))
    })
  }) as Effect.Effect<A, unknown> & { [callbackKey]?: Callback<A> }
  effect[callbackKey] = callback
  return effect
}

/** The callback an effect made by {@link fromCallback} runs, if it was. */
export const callbackOf = (effect: Effect.Effect<unknown, unknown>): Callback | undefined =>
  (effect as { readonly [callbackKey]?: Callback })[callbackKey]

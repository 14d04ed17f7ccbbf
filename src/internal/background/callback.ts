/**
 * Plain callbacks as tasks — `async (signal) => ...`, the Promise API's task bodies. As an effect
 * ({@link fromCallback}) a callback runs anywhere an effect does; a runner fiber recognises one
 * ({@link callbackOf}) and calls it directly, without the effects around it (runners.ts).
 *
 * Either way: the callback is given an AbortSignal, aborted when the task is interrupted; the
 * task then waits for the callback to settle, so a callback that stops on its signal ends as
 * interrupted, and one that ignores it keeps the task alive until the supervisor's interrupt
 * timeout, which names it in the report. A rejection or a throw is the task's failure.
 */
import * as Effect from "effect/Effect"

/** A task's body as the Promise API takes it. */
export type Callback<A = unknown> = (signal: AbortSignal) => PromiseLike<A> | A

const callbackKey: unique symbol = Symbol.for("effect-background/callback")

interface CallbackEffect<A> extends Effect.Effect<A, unknown> {
  readonly [callbackKey]: Callback<A>
}

export const isThenable = <A>(value: PromiseLike<A> | A): value is PromiseLike<A> =>
  (typeof value === "object" || typeof value === "function") && value !== null &&
  typeof (value as { readonly then?: unknown }).then === "function"

/** A callback as an effect (see the module's description). */
export const fromCallback = <A>(callback: Callback<A>): Effect.Effect<A, unknown> => {
  const effect = Effect.async<A, unknown>((resume) => {
    const controller = new AbortController()
    let settled = false
    let onSettled: (() => void) | undefined
    const settle = (result: Effect.Effect<A, unknown>) => {
      settled = true
      onSettled?.()
      resume(result)
    }
    // Called directly, not from a promise's executor: a callback that returns a value (or throws)
    // settles now, and one that returns a promise costs no promise of ours around it.
    let result: PromiseLike<A> | A
    try {
      result = callback(controller.signal)
    } catch (error) {
      settle(Effect.fail(error))
      return
    }
    if (!isThenable(result)) {
      settle(Effect.succeed(result))
      return
    }
    result.then(
      (value) => settle(Effect.succeed(value)),
      (error: unknown) => settle(Effect.fail(error))
    )
    return Effect.async<void>((stopped) => {
      controller.abort()
      if (settled) stopped(Effect.void)
      else onSettled = () => stopped(Effect.void)
    })
  })
  return Object.assign(effect, { [callbackKey]: callback }) as CallbackEffect<A>
}

/** The callback an effect made by {@link fromCallback} runs, if it was. */
export const callbackOf = (effect: Effect.Effect<unknown, unknown>): Callback | undefined =>
  (effect as Partial<CallbackEffect<unknown>>)[callbackKey]

/**
 * `Cause.isInterruptedOnly` and `Cause.isEmpty`, answered without Effect's general cause reducer
 * for the small causes an interruption leaves (an `Interrupt`, next to `Empty` in a `Sequential`
 * or two): every task a shutdown interrupts asks them, several times, and the reducer's
 * allocations showed in the shutdown's profile. Larger causes go to Effect's own functions.
 */
import * as Cause from "effect/Cause"

/** Whether `cause` holds interruptions only (or nothing), as `Cause.isInterruptedOnly` says. */
export const isInterruptedOnly = (cause: Cause.Cause<unknown>): boolean =>
  everyLeaf(cause, 3, interruptedOrEmpty) ?? Cause.isInterruptedOnly(cause)

/**
 * Whether `cause` holds nothing, as `Cause.isEmpty` says: asked of a fiber's interruptors (an
 * `Interrupt`, or a few of them in a `Sequential`) for every run of a job that a shutdown stops.
 */
export const isEmpty = (cause: Cause.Cause<unknown>): boolean => everyLeaf(cause, 3, empty) ?? Cause.isEmpty(cause)

type Leaf = Exclude<Cause.Cause<unknown>, Cause.Sequential<unknown> | Cause.Parallel<unknown>>

const interruptedOrEmpty = (leaf: Leaf): boolean => leaf._tag === "Interrupt" || leaf._tag === "Empty"

const empty = (leaf: Leaf): boolean => leaf._tag === "Empty"

/**
 * Whether every leaf of `cause` passes `test`, answered within `depth` levels of `Sequential` and
 * `Parallel`; `undefined` when the cause is deeper than that and no leaf seen so far fails.
 */
const everyLeaf = (cause: Cause.Cause<unknown>, depth: number, test: (leaf: Leaf) => boolean): boolean | undefined => {
  if (cause._tag !== "Sequential" && cause._tag !== "Parallel") return test(cause)
  if (depth === 0) return undefined
  const left = everyLeaf(cause.left, depth - 1, test)
  if (left === false) return false
  const right = everyLeaf(cause.right, depth - 1, test)
  if (right === false) return false
  return left === undefined || right === undefined ? undefined : true
}

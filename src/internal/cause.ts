/**
 * `Cause.isInterruptedOnly` and `Cause.isEmpty`, answered without Effect's general cause reducer
 * for the small causes an interruption leaves (an `Interrupt`, next to `Empty` in a `Sequential`
 * or two): every task a shutdown interrupts asks them, several times, and the reducer's
 * allocations showed in the shutdown's profile. Larger causes go to Effect's own functions.
 */
import * as Cause from "effect/Cause"

/** Whether `cause` holds interruptions only (or nothing), as `Cause.isInterruptedOnly` says. */
export const isInterruptedOnly = (cause: Cause.Cause<unknown>): boolean =>
  shallow(cause, 3) ?? Cause.isInterruptedOnly(cause)

/**
 * Whether `cause` holds nothing, as `Cause.isEmpty` says: asked of a fiber's interruptors (an
 * `Interrupt`, or a few of them in a `Sequential`) for every run of a job that a shutdown stops.
 */
export const isEmpty = (cause: Cause.Cause<unknown>): boolean => shallowEmpty(cause, 3) ?? Cause.isEmpty(cause)

const shallowEmpty = (cause: Cause.Cause<unknown>, depth: number): boolean | undefined => {
  switch (cause._tag) {
    case "Empty":
      return true
    case "Interrupt":
    case "Fail":
    case "Die":
      return false
    case "Sequential":
    case "Parallel": {
      if (depth === 0) return undefined
      const left = shallowEmpty(cause.left, depth - 1)
      if (left === false) return false
      const right = shallowEmpty(cause.right, depth - 1)
      if (right === false) return false
      return left === undefined || right === undefined ? undefined : true
    }
  }
}

/** The answer within `depth` levels, or `undefined` when the cause is deeper than that. */
const shallow = (cause: Cause.Cause<unknown>, depth: number): boolean | undefined => {
  switch (cause._tag) {
    case "Empty":
    case "Interrupt":
      return true
    case "Fail":
    case "Die":
      return false
    case "Sequential":
    case "Parallel": {
      if (depth === 0) return undefined
      const left = shallow(cause.left, depth - 1)
      if (left === false) return false
      const right = shallow(cause.right, depth - 1)
      if (right === false) return false
      return left === undefined || right === undefined ? undefined : true
    }
  }
}

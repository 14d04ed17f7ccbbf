/**
 * Option validation shared by every layer. Each check returns the normalised value or fails with an
 * `InvalidOptionError` naming the option and the value, so a bad option stops the layer build.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidOptionError } from "../Errors.js"

const invalid = (option: string, value: unknown, expected: string) =>
  Effect.fail(new InvalidOptionError({ option, value, expected }))

/** Duration.decode clamps these to zero, which would hide a typo like "-5 seconds". */
const isNegativeOrNaN = (value: unknown): boolean => {
  if (typeof value === "number") return Number.isNaN(value) || value < 0
  if (typeof value === "bigint") return value < 0n
  if (typeof value === "string") return value.trimStart().startsWith("-")
  if (Array.isArray(value)) return value.some((part) => typeof part === "number" && (Number.isNaN(part) || part < 0))
  return false
}

/** The longest delay a Node timer honours (about 24.8 days); longer ones fire after 1 ms. */
export const NODE_TIMER_MAX_MILLIS = 2 ** 31 - 1

/** `fallback` when the option was not given; `null` counts as given, and is then refused. */
export const orDefault = <A>(value: A | undefined, fallback: A): A => (value === undefined ? fallback : value)

/** The options object itself: `undefined` means none were given; anything but an object is refused. */
export const record = <A extends object>(option: string, value: A | undefined): Effect.Effect<Partial<A>, InvalidOptionError> =>
  value === undefined
    ? Effect.succeed({})
    : typeof value === "object" && value !== null && !Array.isArray(value)
    ? Effect.succeed(value)
    : invalid(option, value, "an object of options")

/**
 * A duration that must be finite; `positive` also rules out zero. Options that end up in a Node
 * timer pass `maxMillis` ({@link NODE_TIMER_MAX_MILLIS}), since Node fires longer delays at once.
 */
export const duration = (
  option: string,
  value: unknown,
  bound: "nonNegative" | "positive",
  maxMillis: number = Number.POSITIVE_INFINITY
): Effect.Effect<Duration.Duration, InvalidOptionError> => {
  const limit = Number.isFinite(maxMillis) ? `, at most ${maxMillis} ms (about 24 days)` : ""
  const expected = bound === "positive"
    ? `a finite duration greater than zero${limit} (e.g. 500, "2 seconds")`
    : `a finite duration of zero or more${limit} (e.g. 0, 500, "2 seconds")`
  if (isNegativeOrNaN(value)) return invalid(option, value, expected)
  const decoded = Duration.decodeUnknown(value)
  if (Option.isNone(decoded)) return invalid(option, value, expected)
  const d = decoded.value
  if (!Duration.isFinite(d)) return invalid(option, value, expected)
  if (bound === "positive" && Duration.lessThanOrEqualTo(d, Duration.zero)) {
    return invalid(option, value, expected)
  }
  if (Duration.toMillis(d) > maxMillis) return invalid(option, value, expected)
  return Effect.succeed(d)
}

/** A whole number at least `min`; `"unbounded"` maps to `Infinity` when allowed. */
export const count = (
  option: string,
  value: unknown,
  min: number,
  allowUnbounded = false
): Effect.Effect<number, InvalidOptionError> => {
  if (allowUnbounded && value === "unbounded") return Effect.succeed(Number.POSITIVE_INFINITY)
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= min) return Effect.succeed(value)
  return invalid(
    option,
    value,
    `a whole number of at least ${min}${allowUnbounded ? " or \"unbounded\"" : ""}`
  )
}

/** One of a fixed set of string literals. */
export const oneOf = <const L extends string>(
  option: string,
  value: unknown,
  literals: ReadonlyArray<L>
): Effect.Effect<L, InvalidOptionError> =>
  typeof value === "string" && (literals as ReadonlyArray<string>).includes(value)
    ? Effect.succeed(value as L)
    : invalid(option, value, `one of ${literals.map((l) => JSON.stringify(l)).join(", ")}`)

/** A non-empty string without surrounding whitespace. */
export const isName = (value: unknown): value is string =>
  typeof value === "string" && value.trim().length > 0 && value.trim() === value

const NAME_EXPECTED = "a non-empty string without leading or trailing spaces"

/** The error {@link name} fails with, for checks done outside an effect. */
export const invalidName = (option: string, value: unknown): InvalidOptionError =>
  new InvalidOptionError({ option, value, expected: NAME_EXPECTED })

/** The error for an option that must be `true` or `false`. */
export const invalidBoolean = (option: string, value: unknown): InvalidOptionError =>
  new InvalidOptionError({ option, value, expected: "true or false" })

/** A non-empty name without surrounding whitespace. */
export const name = (option: string, value: unknown): Effect.Effect<string, InvalidOptionError> =>
  isName(value) ? Effect.succeed(value) : Effect.fail(invalidName(option, value))

/** A TCP port number (0 picks a free one). */
export const port = (option: string, value: unknown): Effect.Effect<number, InvalidOptionError> =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 65535
    ? Effect.succeed(value)
    : invalid(option, value, "a whole number from 0 to 65535")

export { invalid }

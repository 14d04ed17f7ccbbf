/**
 * Option validation shared by every layer. Each check returns the normalised value or fails with an
 * `InvalidOptionError` naming the option, the value and an example of a valid one; {@link all} runs
 * every check of a call and fails with one error listing all the invalid options, so a start
 * reports them together instead of one per restart.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { InvalidOptionError, type OptionIssue } from "../Errors.js"

/** The error for one invalid option. */
export const invalidOption = (option: string, value: unknown, expected: string): InvalidOptionError =>
  new InvalidOptionError({ issues: [{ option, value, expected }] })

/** Fails with the error for one invalid option. */
export const invalid = (option: string, value: unknown, expected: string): Effect.Effect<never, InvalidOptionError> =>
  Effect.fail(invalidOption(option, value, expected))

/** The same option refused twice for the same reason (two layers sharing it) is listed once. */
const sameIssue = (a: OptionIssue, b: OptionIssue): boolean =>
  a.option === b.option && a.expected === b.expected && Object.is(a.value, b.value)

type Checked<Checks> = {
  readonly [K in keyof Checks]: Checks[K] extends Effect.Effect<infer A, InvalidOptionError> ? A : never
}

/**
 * Runs every check, in order, even after one has failed, and succeeds with their values — or fails
 * with one `InvalidOptionError` listing the issues of all the checks that failed.
 */
export const all = <const Checks extends Readonly<Record<string, Effect.Effect<unknown, InvalidOptionError>>>>(
  checks: Checks
): Effect.Effect<Checked<Checks>, InvalidOptionError> =>
  Effect.suspend(() => {
    const keys = Object.keys(checks)
    return Effect.flatMap(Effect.forEach(keys, (key) => Effect.either(checks[key]!)), (results) => {
      const values: Record<string, unknown> = {}
      const issues: Array<OptionIssue> = []
      results.forEach((result, index) => {
        if (Either.isRight(result)) values[keys[index]!] = result.right
        else issues.push(...result.left.issues)
      })
      const error = invalidOptions(issues)
      return error === undefined ? Effect.succeed(values as Checked<Checks>) : Effect.fail(error)
    })
  })

/** The error listing `issues` (each once), or `undefined` when there are none. */
export const invalidOptions = (issues: ReadonlyArray<OptionIssue>): InvalidOptionError | undefined => {
  const [first, ...rest] = issues.filter((issue, index) => issues.findIndex((seen) => sameIssue(seen, issue)) === index)
  return first === undefined ? undefined : new InvalidOptionError({ issues: [first, ...rest] })
}

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

/**
 * The options object itself: `undefined` means none were given; anything but an object is refused
 * (`example` is a valid one, as code).
 */
export const record = <A extends object>(
  option: string,
  value: A | undefined,
  example: string
): Effect.Effect<Partial<A>, InvalidOptionError> =>
  value === undefined
    ? Effect.succeed({})
    : typeof value === "object" && value !== null && !Array.isArray(value)
    ? Effect.succeed(value)
    : invalid(option, value, `an object of options (e.g. ${example})`)

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

/** A whole number at least `min` (`example` is a valid one); `"unbounded"` maps to `Infinity` when allowed. */
export const count = (
  option: string,
  value: unknown,
  min: number,
  example: number,
  allowUnbounded = false
): Effect.Effect<number, InvalidOptionError> => {
  if (allowUnbounded && value === "unbounded") return Effect.succeed(Number.POSITIVE_INFINITY)
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= min) return Effect.succeed(value)
  return allowUnbounded
    ? invalid(option, value, `a whole number of at least ${min} or "unbounded" (e.g. ${example}, "unbounded")`)
    : invalid(option, value, `a whole number of at least ${min} (e.g. ${example})`)
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

/** The last name {@link isName} accepted: a route adds its tasks under the same name each time. */
let lastName: string | undefined = undefined

/** A non-empty string without surrounding whitespace. */
export const isName = (value: unknown): value is string => {
  if (typeof value !== "string") return false
  if (value === lastName) return true
  if (value.length === 0 || value.trim() !== value) return false
  lastName = value
  return true
}

/** What {@link name} expects, with `example` as a valid one. */
export const nameExpected = (example: string): string =>
  `a non-empty string without leading or trailing spaces (e.g. ${JSON.stringify(example)})`

/** What an option that must be `true` or `false` expects. */
export const BOOLEAN_EXPECTED = "true or false"

/** An optional boolean option: `undefined` or a boolean, as given. */
export const boolean = (option: string, value: unknown): Effect.Effect<boolean | undefined, InvalidOptionError> =>
  value === undefined || typeof value === "boolean" ? Effect.succeed(value) : invalid(option, value, BOOLEAN_EXPECTED)

/** A non-empty name without surrounding whitespace (`example` is a valid one). */
export const name = (option: string, value: unknown, example: string): Effect.Effect<string, InvalidOptionError> =>
  isName(value) ? Effect.succeed(value) : invalid(option, value, nameExpected(example))

/** A TCP port number (0 picks a free one). */
export const port = (option: string, value: unknown): Effect.Effect<number, InvalidOptionError> =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 65535
    ? Effect.succeed(value)
    : invalid(option, value, "a whole number from 0 to 65535 (e.g. 3000, or 0 for any free port)")

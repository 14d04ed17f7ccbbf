/**
 * The shutdown path's `isInterruptedOnly` and `isEmpty` (src/internal/cause.ts) answer as Effect's
 * own `Cause.isInterruptedOnly` and `Cause.isEmpty` do, for every cause tree up to depth 3 and for random deeper ones
 * (past its own depth it hands over to Effect's).
 */
import { describe, expect, it } from "vitest"
import { Cause, FiberId } from "effect"
import * as causes from "../src/internal/cause.js"

const leaves: ReadonlyArray<Cause.Cause<string>> = [
  Cause.empty,
  Cause.interrupt(FiberId.make(1, 0)),
  Cause.fail("failed"),
  Cause.die(new Error("defect"))
]

/** Every cause with leaves from `leaves` and at most `depth` levels of Sequential/Parallel. */
const allOf = (depth: number): ReadonlyArray<Cause.Cause<string>> => {
  if (depth === 0) return leaves
  const smaller = allOf(depth - 1)
  const combined: Array<Cause.Cause<string>> = [...leaves]
  for (const left of smaller) {
    for (const right of smaller) combined.push(Cause.sequential(left, right), Cause.parallel(left, right))
  }
  return combined
}

/** A deterministic pseudo-random cause, up to `depth` levels. */
const randomOf = (next: () => number, depth: number): Cause.Cause<string> => {
  const pick = next()
  if (depth === 0 || pick < 0.3) return leaves[Math.floor(next() * leaves.length)]!
  const left = randomOf(next, depth - 1)
  const right = randomOf(next, depth - 1)
  return pick < 0.65 ? Cause.sequential(left, right) : Cause.parallel(left, right)
}

describe("isInterruptedOnly", () => {
  it("agrees with Cause.isInterruptedOnly on every cause up to depth 2 and on random deeper ones", () => {
    const exhaustive = allOf(2)
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
    const random = Array.from({ length: 2_000 }, () => randomOf(next, 8))
    const disagree = [...exhaustive, ...random].filter((cause) =>
      causes.isInterruptedOnly(cause) !== Cause.isInterruptedOnly(cause)
    )
    expect(disagree.map((cause) => Cause.pretty(cause))).toEqual([])
    // both answers occur, so the comparison means something
    const answers = new Set(random.map((cause) => causes.isInterruptedOnly(cause)))
    expect(answers).toEqual(new Set([true, false]))
    expect(exhaustive).toHaveLength(2_596)
  })
})

describe("isEmpty", () => {
  it("agrees with Cause.isEmpty on every cause up to depth 2 and on random deeper ones", () => {
    const exhaustive = allOf(2)
    let seed = 11
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
    // (mostly empty leaves, so deep causes that are empty all through occur too)
    const emptyish = (depth: number): Cause.Cause<string> =>
      depth === 0 || next() < 0.2
        ? next() < 0.9 ? Cause.empty : leaves[1 + Math.floor(next() * 3)]!
        : next() < 0.5
        ? Cause.sequential(emptyish(depth - 1), emptyish(depth - 1))
        : Cause.parallel(emptyish(depth - 1), emptyish(depth - 1))
    const random = [...Array.from({ length: 1_000 }, () => randomOf(next, 8)), ...Array.from({ length: 1_000 }, () => emptyish(6))]
    const disagree = [...exhaustive, ...random].filter((cause) => causes.isEmpty(cause) !== Cause.isEmpty(cause))
    expect(disagree.map((cause) => Cause.pretty(cause))).toEqual([])
    // both answers occur among the deeper ones, so the comparison means something there too
    const deep = random.filter((cause) => cause._tag === "Sequential" || cause._tag === "Parallel")
    expect(new Set(deep.map((cause) => causes.isEmpty(cause)))).toEqual(new Set([true, false]))
  })
})

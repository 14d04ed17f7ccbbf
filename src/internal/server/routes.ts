/**
 * What the library's own routes share: a bearer-token check, and the durable store's part of the
 * snapshot.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createHash, timingSafeEqual } from "node:crypto"
import { DurableStore } from "../durable/tag.js"

/**
 * Whether an `Authorization` header carries `Bearer <token>`; every header passes when `token` is
 * undefined (an open route).
 */
export const bearer = (token: string | undefined): (header: string | undefined) => boolean => {
  const expected = token === undefined ? undefined : createHash("sha256").update(token).digest()
  return (header) => {
    if (expected === undefined) return true
    const match = /^Bearer (.+)$/i.exec(header ?? "")
    if (match === null) return false
    // Compare digests so the comparison takes the same time whatever the length of the guess.
    return timingSafeEqual(createHash("sha256").update(match[1]!).digest(), expected)
  }
}

/**
 * With a durable store in context: what it holds, by task type and state, across every process on
 * it (or why it could not say), and what this process's workers have done.
 */
export const durableSnapshot = Effect.flatMap(Effect.serviceOption(DurableStore), (store) =>
  Option.isNone(store)
    ? Effect.succeed(undefined)
    : Effect.map(
      Effect.either(store.value.counts),
      (counts) => ({
        store: store.value.description,
        ...(counts._tag === "Right" ? { counts: counts.right } : { error: counts.left.message }),
        thisProcess: { ...store.value.stats }
      })
    ))

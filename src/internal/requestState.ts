/**
 * State the library keeps per request (its task list, its response, the runtime serving it), kept
 * on the request's own object under a symbol rather than in a `WeakMap`.
 *
 * Why not a `WeakMap`: V8's young-generation collector (the scavenger, which runs every few
 * megabytes allocated) does not clear a `WeakMap`'s entries; it keeps every entry's key and value
 * alive and promotes them to the old generation, where only a full collection frees them. Keyed
 * by objects that live for one request, a `WeakMap` turns each request's objects into old-space
 * garbage. Measured on Node 20: 3 million short-lived keys set in a `WeakMap` took 5.3 s against
 * 0.3 s stored as a symbol property; a Fastify server with the adapter's hooks promoted 2.2 MB per
 * scavenge (7–9 ms pauses) against 2 KB without them.
 *
 * A request object that cannot take a property (frozen or sealed) falls back to a `WeakMap`.
 *
 * An object whose prototype was changed (Express gives every request and response its app's
 * prototypes) gets a hidden class of its own in V8, so any property read or write on it is slow
 * (adding one: 2.2 µs measured on Node 20; see `Exchange` in node/runtime.ts, which reads what it
 * needs before Express does that).
 */

/** One kind of per-request state. */
export interface RequestState<A> {
  /** The value kept on `target`; undefined for anything else, a non-object included. */
  readonly get: (target: unknown) => A | undefined
  readonly set: (target: object, value: A) => void
  /** Lets go of the value (the property stays, holding `undefined`: deleting one slows the object). */
  readonly clear: (target: object) => void
}

type Holder<A> = Record<symbol, A | undefined>

/** A new kind of per-request state; `description` names its symbol (seen in a debugger). */
export const make = <A>(description: string): RequestState<A> => {
  const key = Symbol(description)
  let fallback: WeakMap<object, A> | undefined
  return {
    get: (target) =>
      (typeof target === "object" || typeof target === "function") && target !== null
        ? (target as Holder<A>)[key] ?? fallback?.get(target)
        : undefined,
    set: (target, value) => {
      if (Object.isExtensible(target)) (target as Holder<A>)[key] = value
      else (fallback ??= new WeakMap()).set(target, value)
    },
    clear: (target) => {
      if (Object.prototype.hasOwnProperty.call(target, key)) (target as Holder<A>)[key] = undefined
      else fallback?.delete(target)
    }
  }
}

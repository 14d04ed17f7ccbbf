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
 * Adding a property to an object whose prototype was changed (Express gives every request and
 * response its app's prototypes) costs V8 about 2 µs (measured on Node 20 with IncomingMessages
 * given another prototype: 2.2 µs for one symbol property, 3.9 µs for two; 0.02 µs for two made
 * before the change). So a kind may be *prepared*: {@link prepare}, called on each request
 * before the framework sees it (the runtime's `request` listener, first of all), gives the
 * request and its response the prepared kinds' properties, holding `undefined`. In a CPU profile
 * of the Express benchmark route the middleware's `set` still took about 1.4 µs per request with
 * its property prepared: what is left there is not yet understood.
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

const preparedOnRequest: Array<symbol> = []
const preparedOnResponse: Array<symbol> = []

/**
 * A new kind of per-request state; `description` names its symbol (seen in a debugger);
 * `prepared`: the object {@link prepare} gives its property to.
 */
export const make = <A>(description: string, prepared?: "request" | "response"): RequestState<A> => {
  const key = Symbol(description)
  if (prepared === "request") preparedOnRequest.push(key)
  else if (prepared === "response") preparedOnResponse.push(key)
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

/** Gives `request` and `response` the prepared kinds' properties, holding `undefined` (see above). */
export const prepare = (request: object, response: object): void => {
  if (Object.isExtensible(request)) {
    for (const key of preparedOnRequest) {
      if ((request as Holder<unknown>)[key] === undefined) (request as Holder<unknown>)[key] = undefined
    }
  }
  if (Object.isExtensible(response)) {
    for (const key of preparedOnResponse) {
      if ((response as Holder<unknown>)[key] === undefined) (response as Holder<unknown>)[key] = undefined
    }
  }
}

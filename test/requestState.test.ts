/**
 * Per-request state (src/internal/requestState.ts): kept on the request's object under a symbol
 * that no other kind shares, invisible to the object's own keys and JSON, with a fallback for an
 * object that cannot take a property.
 */
import { describe, expect, it } from "vitest"
import * as RequestState from "../src/internal/requestState.js"

describe("RequestState", () => {
  it("keeps a value per object, separately per kind, out of the object's keys", () => {
    const tasks = RequestState.make<string>("tasks")
    const runtime = RequestState.make<string>("runtime")
    const a = { url: "/a" }
    const b = { url: "/b" }
    tasks.set(a, "a's tasks")
    runtime.set(a, "a's runtime")
    tasks.set(b, "b's tasks")
    expect(tasks.get(a)).toBe("a's tasks")
    expect(runtime.get(a)).toBe("a's runtime")
    expect(tasks.get(b)).toBe("b's tasks")
    expect(runtime.get(b)).toBeUndefined()
    expect(Object.keys(a)).toEqual(["url"])
    expect(JSON.stringify(a)).toBe(`{"url":"/a"}`)
  })

  it("answers undefined for anything that is not an object, and after clear", () => {
    const state = RequestState.make<number>("n")
    for (const target of [undefined, null, 1, "s", true]) expect(state.get(target)).toBeUndefined()
    const request = {}
    state.set(request, 1)
    state.clear(request)
    expect(state.get(request)).toBeUndefined()
  })

  it("keeps state for a frozen or sealed object, and clears it", () => {
    const state = RequestState.make<string>("frozen")
    const frozen = Object.freeze({})
    const sealed = Object.seal({})
    state.set(frozen, "f")
    state.set(sealed, "s")
    expect(state.get(frozen)).toBe("f")
    expect(state.get(sealed)).toBe("s")
    state.clear(frozen)
    expect(state.get(frozen)).toBeUndefined()
    expect(state.get(sealed)).toBe("s")
  })
})

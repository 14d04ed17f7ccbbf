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

  it("prepare gives a request and its response the prepared kinds' properties, holding undefined, and no others", () => {
    const onRequest = RequestState.make<string>("on-request", "request")
    const onResponse = RequestState.make<string>("on-response", "response")
    const unprepared = RequestState.make<string>("unprepared")
    const request = {}
    const response = {}
    const frozen = Object.freeze({})
    RequestState.prepare(request, frozen)
    RequestState.prepare({}, response)
    const own = (target: object) => Object.getOwnPropertySymbols(target).map((key) => key.description)
    expect(own(request)).toContain("on-request")
    expect(own(request)).not.toContain("on-response")
    expect(own(response)).toContain("on-response")
    expect(own(response)).not.toContain("on-request")
    expect([...own(request), ...own(response)]).not.toContain("unprepared")
    expect(onRequest.get(request)).toBeUndefined()
    // a prototype changed afterwards (as Express does) keeps the property, which then takes its value
    Object.setPrototypeOf(request, { framework: true })
    onRequest.set(request, "runtime")
    onResponse.set(response, "tasks")
    unprepared.set(request, "added later")
    expect([onRequest.get(request), onResponse.get(response), unprepared.get(request)]).toEqual(["runtime", "tasks", "added later"])
    // a value already there is kept
    RequestState.prepare(request, response)
    expect(onRequest.get(request)).toBe("runtime")
  })
})

/**
 * Plain Node helpers for the Promise API's tests (test/Node.test.ts and the Express, Fastify and
 * Hono adapters' tests): requests on fresh connections, a streamed reply read chunk by chunk, a
 * client that hangs up after the first chunk, a deferred, and a bounded wait on a condition.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { expect } from "vitest"

export interface Reply {
  readonly status: number
  readonly body: string
}

/** One request on a fresh connection. */
export const send = (port: number, path: string, method = "POST"): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const request = Http.request({ host: "127.0.0.1", port, path, method, agent: false }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
      response.on("error", reject)
    })
    request.on("error", reject)
    request.end()
  })

/** Listens on an ephemeral loopback port; resolves to the port. */
export const listen = (server: Http.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as Net.AddressInfo).port)))

export interface Deferred<A = void> {
  readonly promise: Promise<A>
  readonly resolve: (value: A) => void
}

export const deferred = <A = void>(): Deferred<A> => {
  let resolve!: (value: A) => void
  const promise = new Promise<A>((done) => (resolve = done))
  return { promise, resolve }
}

/** Resolves once `predicate` holds, checking after each turn of the event loop (bounded). */
export const until = async (predicate: () => boolean): Promise<void> => {
  for (let turn = 0; turn < 100_000 && !predicate(); turn++) await new Promise((resolve) => setImmediate(resolve))
  expect(predicate()).toBe(true)
}

/** A GET whose body is read to its end; `firstChunk` resolves when its first chunk arrives. */
export const streamed = (port: number, path: string, firstChunk: Deferred): Promise<string> =>
  new Promise<string>((resolve) => {
    Http.request({ host: "127.0.0.1", port, path, agent: false }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        body += chunk
        firstChunk.resolve()
      })
      response.on("end", () => resolve(body))
    }).end()
  })

/** A GET whose client hangs up as soon as the first chunk of the body arrives. */
export const hangUpAfterFirstChunk = (port: number, path: string): Promise<void> =>
  new Promise<void>((resolve) => {
    const request = Http.request({ host: "127.0.0.1", port, path, agent: false }, (response) => {
      response.once("data", () => {
        request.destroy()
        resolve()
      })
    })
    request.on("error", () => {})
    request.end()
  })

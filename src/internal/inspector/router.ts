/**
 * The inspector's routes: the page's static files (shipped in the package's `inspector/` folder),
 * its view as JSON once (`api/state`) or as a live stream of server-sent events (`api/stream`, one
 * view a second), and the actions on dead durable tasks. The view and the actions are behind the
 * bearer token; the actions exist only when there is one.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { readFile } from "node:fs/promises"
import * as Http from "node:http"
import type { Background } from "../../Background.js"
import { DurableStore } from "../durable/tag.js"
import * as routes from "../server/routes.js"
import { GracefulServer } from "../server/graceful.js"
import { view } from "./state.js"

/** The page's files: `inspector/` at the package's root (beside `src/` and `dist/`). */
const assets = new URL("../../../inspector/", import.meta.url)

/** Each file is read once, on its first request. */
const cache = new Map<string, Promise<string>>()
const asset = (name: string): Effect.Effect<string, Error> =>
  Effect.tryPromise({
    try: () => {
      let text = cache.get(name)
      if (text === undefined) {
        text = readFile(new URL(name, assets), "utf8")
        // (a failed read is tried again next time)
        text.catch(() => cache.delete(name))
        cache.set(name, text)
      }
      return text
    },
    catch: (cause) => new Error(`effect-background inspector: cannot read ${name}: ${String(cause)}`)
  })

const noStore = { "cache-control": "no-store" }

/** The page's own policy: its script and style only, and requests to its own server. */
const PAGE_HEADERS = {
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff"
}

const file = (name: string, contentType: string, transform: (text: string) => string = (text) => text) =>
  asset(name).pipe(
    Effect.map((text) => HttpServerResponse.text(transform(text), { contentType, headers: PAGE_HEADERS })),
    Effect.catchAll((error) => Effect.as(Effect.logError(error.message), HttpServerResponse.text("inspector files missing", { status: 500 })))
  )

const unauthorized = HttpServerResponse.unsafeJson({ error: "unauthorized" }, {
  status: 401,
  headers: { "www-authenticate": "Bearer", ...noStore }
})

/**
 * How long one stream lasts when the server is not `Server.layer`'s: such a server's close waits
 * for open connections, so the stream ends by itself (the page opens the next one at once). Under
 * `Server.layer` it lasts until the drain ends, without holding it.
 */
const UNMANAGED_STREAM_EVENTS = 30

/** A view as one server-sent event. */
const encoder = new TextEncoder()
const event = (data: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(data)}\n\n`)

export const router = (
  path: `/${string}`,
  token: string | undefined
): HttpRouter.HttpRouter<never, Background> => {
  const authorized = routes.bearer(token)
  /** Runs `handler` for a caller with the token (when there is one); 401 otherwise. */
  const guarded = <R>(
    handler: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | HttpServerRequest.HttpServerRequest> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      authorized(request.headers.authorization) ? handler : Effect.succeed(unauthorized))

  // Actions need a token: an open page may show, never change.
  const actions = token !== undefined
  const state = Effect.map(view(actions), (current) => HttpServerResponse.unsafeJson(current, { headers: noStore }))

  const stream = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const graceful = Option.getOrUndefined(yield* Effect.serviceOption(GracefulServer))
    const source = request.source
    if (graceful !== undefined && source instanceof Http.IncomingMessage) {
      graceful.exempt(NodeHttpServerRequest.toIncomingMessage(request))
    }
    // (the stream is run by the platform, outside this handler: it is given the handler's services)
    const services = yield* Effect.context<Background>()
    const views = Stream.repeatEffectWithSchedule(
      Effect.map(Effect.provide(view(actions), services), event),
      Schedule.spaced("1 second")
    )
    return HttpServerResponse.stream(graceful === undefined ? Stream.take(views, UNMANAGED_STREAM_EVENTS) : views, {
      contentType: "text/event-stream",
      headers: { ...noStore, "x-accel-buffering": "no" }
    })
  })

  const act = (action: "retry" | "discard") =>
    Effect.gen(function*() {
      if (!actions) {
        return HttpServerResponse.unsafeJson({ error: "actions need a token: give Inspector.router one" }, { status: 403 })
      }
      const { id = "" } = yield* HttpRouter.params
      const found = yield* Effect.serviceOption(DurableStore)
      if (Option.isNone(found)) return HttpServerResponse.unsafeJson({ error: "no durable store" }, { status: 404 })
      const store = found.value
      const done = yield* action === "retry" ? store.retryDead(id) : store.discard(id)
      if (!done) return HttpServerResponse.unsafeJson({ id, error: "no dead task has this id" }, { status: 404 })
      const now = action === "retry" ? yield* store.find(id) : undefined
      return HttpServerResponse.unsafeJson({ id, action, state: now?.state ?? null }, { headers: noStore })
    }).pipe(
      Effect.catchTag("DurableStoreError", (error) =>
        Effect.succeed(HttpServerResponse.unsafeJson({ error: error.message }, { status: 503 })))
    )

  const page = file("index.html", "text/html; charset=utf-8", (html) => html.replaceAll("%BASE%", path))
  return HttpRouter.empty.pipe(
    HttpRouter.get(path, page),
    HttpRouter.get(`${path}/app.js`, file("app.js", "text/javascript; charset=utf-8")),
    HttpRouter.get(`${path}/app.css`, file("app.css", "text/css; charset=utf-8")),
    HttpRouter.get(`${path}/api/state`, guarded(state)),
    HttpRouter.get(`${path}/api/stream`, guarded(stream)),
    HttpRouter.post(`${path}/api/durable/:id/retry`, guarded(act("retry"))),
    HttpRouter.post(`${path}/api/durable/:id/discard`, guarded(act("discard")))
  )
}

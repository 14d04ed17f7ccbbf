/**
 * The Hono adapter for `@hono/node-server`: a fetch callback that gives each request an
 * `ExecutionContext` whose `waitUntil` hands the promise to the runtime (what Workers and Vercel do,
 * which Node has no equivalent of), and keeps the request's Node response so `after` finds it.
 */
import type { Http2Bindings, HttpBindings } from "@hono/node-server"
import type { Context, Env, ExecutionContext } from "hono"
import * as Http from "node:http"
import type { Callback } from "../../Node.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import { NodeRuntime, type Task } from "./runtime.js"

/** Kept on each Node response (a property, not a WeakMap: see requestState.ts). */
const runtimes = RequestState.make<NodeRuntime>("effect-background/hono")

/** What `fetch` needs of a Hono app (so any Env typing of the app is accepted). */
export interface FetchApp {
  /** The app's fetch: `new Hono().fetch`. */
  readonly fetch: (request: Request, env: HttpBindings, executionCtx: ExecutionContext) => Response | Promise<Response>
}

export const fetch = (app: FetchApp, background: unknown) => {
  const runtime = NodeRuntime.from(background)
  if (typeof (app as { fetch?: unknown } | null)?.fetch !== "function") {
    throw validate.invalidOption("app", app, "a Hono app (e.g. new Hono())")
  }
  return (request: Request, env: HttpBindings | Http2Bindings): Response | Promise<Response> => {
    if (env?.outgoing instanceof Http.ServerResponse) runtimes.set(env.outgoing, runtime)
    const executionCtx: ExecutionContext = {
      waitUntil: (promise) => {
        // By method only: the URL can carry data, and the route is not known yet when this is made.
        runtime.waitUntil(promise, { name: `waitUntil ${request.method}` })
      },
      passThroughOnException: () => {},
      props: {}
    }
    // (an http2 server's bindings reach the app as given; only an http1 response is kept for `after`)
    return app.fetch(request, env as HttpBindings, executionCtx)
  }
}

/** The runtime and Node response of a request served through `fetch`; `InvalidOptionError` otherwise. */
const servedThrough = <E extends Env>(context: Context<E>): readonly [NodeRuntime, Http.ServerResponse] => {
  const response: unknown = (context as { readonly env?: { readonly outgoing?: unknown } } | null)?.env?.outgoing
  const runtime = response instanceof Http.ServerResponse ? runtimes.get(response) : undefined
  if (runtime === undefined || !(response instanceof Http.ServerResponse)) {
    throw validate.invalidOption(
      "context",
      typeof context === "object" && context !== null ? `${context.req.method} ${context.req.path}` : context,
      "the context of a request served by serve({ fetch: Hono.fetch(app, background) }) from @hono/node-server"
    )
  }
  return [runtime, response]
}

export const after = <E extends Env>(
  context: Context<E>,
  callback: Callback,
  options: { readonly name?: string | undefined } = {}
): void => {
  const [runtime, response] = servedThrough(context)
  runtime.after(response, callback, { name: options.name, route: context.req.routePath })
}

export const waitUntil = <E extends Env>(
  context: Context<E>,
  promise: PromiseLike<unknown>,
  options: { readonly name?: string | undefined } = {}
): Task => {
  const [runtime] = servedThrough(context)
  // The route's pattern, never the URL (it can carry data), as `after` names its tasks.
  return runtime.waitUntil(promise, { name: options.name ?? `waitUntil ${context.req.method} ${context.req.routePath}` })
}

/**
 * Export to the tools a team already runs: an opt-in Prometheus route serving every Effect
 * `Metric` of the process (the library's, see `Metrics`, and the application's own) in
 * Prometheus's text format. The text is written by OpenTelemetry's Prometheus serializer
 * (`@opentelemetry/exporter-prometheus`) from the metrics as `@effect/opentelemetry` reads them,
 * so a scrape and an OpenTelemetry exporter see the same names and values.
 *
 * Traces and OpenTelemetry metrics need no module of ours: provide `@effect/opentelemetry`'s
 * `NodeSdk.layer` to the server, and every background task gets a span linked to the request that
 * started it (docs/observability.md).
 *
 * This module is the only one that needs OpenTelemetry packages, so it is not re-exported from
 * the package root: import it as `effect-background/Telemetry`, with `@effect/opentelemetry`
 * 0.64, `@opentelemetry/exporter-prometheus` 0.223 and their peers installed.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import * as Telemetry from "effect-background/Telemetry"
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/metrics", Telemetry.prometheusRoute({ token: process.env.METRICS_TOKEN }))
 * )
 * ```
 *
 * @since 0.4.0
 * @module
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { MetricProducer, ResourceMetrics } from "@opentelemetry/sdk-metrics"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as validate from "./internal/options.js"
import * as routes from "./internal/server/routes.js"

/**
 * Options of {@link prometheusRoute}.
 *
 * @example
 * ```ts
 * import type * as Telemetry from "effect-background/Telemetry"
 *
 * const options: Telemetry.PrometheusRouteOptions = {
 *   token: process.env.METRICS_TOKEN,
 *   serviceName: "billing-api"
 * }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface PrometheusRouteOptions {
  /**
   * When set, a scrape must carry `Authorization: Bearer <token>` (Prometheus's
   * `authorization: { credentials: ... }` in its scrape config); otherwise it is answered 401 and
   * sees nothing. When `undefined`, the route is open: mount it only where that is safe.
   */
  readonly token?: string | undefined
  /** The `service_name` of the `target_info` series. Default: `"effect-background"`. */
  readonly serviceName?: string | undefined
}

const require = createRequire(import.meta.url)

/** The optional peers the route loads, with the lines this library is tested with. */
const PACKAGE_RANGES: Record<string, string> = {
  "@effect/opentelemetry": "0.64",
  "@opentelemetry/exporter-prometheus": "0.223",
  "@opentelemetry/sdk-metrics": "2.12.0"
}
const PACKAGES = Object.keys(PACKAGE_RANGES)

/** The content type of Prometheus's text exposition format. */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/**
 * An opt-in route answering every Effect `Metric` of the process in Prometheus's text format: the
 * library's own (`effect_background_*`, see `Metrics`), Effect's fiber metrics and the
 * application's. Counters keep their `_total` names, histograms give `_bucket`, `_sum` and
 * `_count` series, and a `target_info` series carries the service name. Give it the same kind of
 * bearer `token` as `Server.snapshotRoute`; an empty token or service name is refused at once with
 * `InvalidOptionError`. The OpenTelemetry packages are loaded at the first scrape (they would add
 * some 200 ms to a server's start), but one that is not installed is named when the route is made,
 * in an error that gives the install line.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Server } from "effect-background"
 * import * as Telemetry from "effect-background/Telemetry"
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/health", Server.health),
 *   HttpRouter.get("/metrics", Telemetry.prometheusRoute({ token: "s3cret-from-config", serviceName: "billing-api" }))
 * )
 * ```
 *
 * @since 0.4.0
 * @category routes
 */
export const prometheusRoute = (
  options: PrometheusRouteOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> => {
  const { serviceName = "effect-background", token } = options
  if (token !== undefined && (typeof token !== "string" || token.length === 0)) {
    throw validate.invalidOption("token", token, "a non-empty string, or undefined for an open route (e.g. process.env.METRICS_TOKEN)")
  }
  if (typeof serviceName !== "string" || serviceName.length === 0) {
    throw validate.invalidOption("serviceName", serviceName, "a non-empty string (e.g. \"billing-api\")")
  }
  // They load later, but a missing one is said now, with the server's start.
  const missing = PACKAGES.filter((name) => {
    try {
      require.resolve(name)
      return false
    } catch {
      return true
    }
  })
  if (missing.length > 0) {
    throw new Error(
      `Telemetry.prometheusRoute needs ${missing.join(", ")}: npm install ${missing.map((name) => `${name}@${PACKAGE_RANGES[name]}`).join(" ")}`
    )
  }
  const authorized = routes.bearer(token)
  // The OpenTelemetry modules load at the first scrape, not with the server: they cost a server's
  // start some 200 ms. One producer per route: it remembers when it first saw each metric, the
  // start time of the counters' series.
  let exporter: Promise<{ readonly producer: MetricProducer; readonly serialize: (metrics: ResourceMetrics) => string }> | undefined
  const load = async () => {
    const [OtelMetrics, OtelResource, { PrometheusSerializer }] = await Promise.all([
      import("@effect/opentelemetry/Metrics"),
      import("@effect/opentelemetry/Resource"),
      import("@opentelemetry/exporter-prometheus")
    ])
    const producer = Effect.runSync(OtelMetrics.makeProducer.pipe(Effect.provide(OtelResource.layer({ serviceName }))))
    const serializer = new PrometheusSerializer()
    return { producer, serialize: (metrics: ResourceMetrics) => serializer.serialize(metrics) }
  }
  const scrape = Effect.promise(async () => {
    exporter ??= load()
    const { producer, serialize } = await exporter
    const { resourceMetrics } = await producer.collect()
    return serialize(resourceMetrics)
  })
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    authorized(request.headers.authorization)
      ? Effect.map(scrape, (text) => HttpServerResponse.text(text, { contentType: CONTENT_TYPE }))
      : Effect.succeed(
        HttpServerResponse.unsafeJson({ error: "unauthorized" }, {
          status: 401,
          headers: { "www-authenticate": "Bearer" }
        })
      ))
}

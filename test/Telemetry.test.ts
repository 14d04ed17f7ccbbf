/**
 * Export: the Prometheus route scraped over real HTTP and its text parsed, and OpenTelemetry
 * (through @effect/opentelemetry's NodeSdk layer) with in-memory exporters: each task's span is
 * linked to the request that started it, across the durable store too, and the metrics reach an
 * OpenTelemetry reader with the values of a known workload.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { NodeSdk } from "@effect/opentelemetry"
import { describe, expect, it } from "@effect/vitest"
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Metric, MetricBoundaries, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Background, BackgroundTasks, InvalidOptionError, Server } from "../src/index.js"
import * as Durable from "../src/Durable.js"
import * as Telemetry from "../src/Telemetry.js"
import { eventually, request } from "./support/http-client.js"
import { captureLogs, start } from "./support/http-server.js"

/** One sample of Prometheus's text format: `name{label="value",...} value`. */
interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses the text exposition format (what a scraper reads): samples, and each family's TYPE. */
const parsePrometheus = (text: string) => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith("#")) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (sample === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))
    }
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) })
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return { samples, types, find }
}

// Metrics of the application's own, beside the library's: the route serves every Effect metric.
const orders = Metric.counter("telemetry_test_orders_total", { description: "orders taken", incremental: true })
const orderSize = Metric.histogram(
  "telemetry_test_order_size",
  MetricBoundaries.linear({ start: 1, width: 1, count: 3 }),
  "items per order"
)

describe("Telemetry.prometheusRoute", () => {
  it.scopedLive("serves every Effect metric in Prometheus's text format, behind the bearer token", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/metrics", Telemetry.prometheusRoute({ token: "scrape-me", serviceName: "telemetry-test" })),
        HttpRouter.post(
          "/order",
          Effect.gen(function*() {
            yield* Metric.increment(orders)
            yield* Metric.update(orderSize, 2)
            yield* BackgroundTasks.add(Effect.void, { name: "telemetry receipt" })
            return HttpServerResponse.empty({ status: 201 })
          })
        )
      )
      const server = yield* start(
        Server.serve(app).pipe(
          Layer.provideMerge(Server.layer({ port: 0 })),
          Layer.provideMerge(Background.layer())
        )
      ).pipe(Effect.provide(captureLogs().layer))
      const before = parsePrometheus((yield* request(server.port, "/metrics", { headers: { authorization: "Bearer scrape-me" } })).body)
      const countBefore = before.find("telemetry_test_orders_total")[0]?.value ?? 0
      const receipts = { kind: "after-response", name: "telemetry receipt" }
      const receiptsBefore = before.find("effect_background_tasks_finished_total", receipts)[0]?.value ?? 0
      for (let i = 0; i < 3; i++) expect((yield* request(server.port, "/order", { method: "POST" })).status).toBe(201)
      yield* server.use(Background.awaitIdle)

      const refused = yield* request(server.port, "/metrics")
      expect(refused.status).toBe(401)
      expect(refused.headers["www-authenticate"]).toBe("Bearer")
      expect(refused.body).not.toContain("telemetry_test")
      const wrong = yield* request(server.port, "/metrics", { headers: { authorization: "Bearer nope" } })
      expect(wrong.status).toBe(401)

      const reply = yield* request(server.port, "/metrics", { headers: { authorization: "Bearer scrape-me" } })
      expect(reply.status).toBe(200)
      expect(reply.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
      const scrape = parsePrometheus(reply.body)
      expect(scrape.types.get("telemetry_test_orders_total")).toBe("counter")
      expect(scrape.find("telemetry_test_orders_total")[0]?.value).toBe(countBefore + 3)
      expect(scrape.types.get("telemetry_test_order_size")).toBe("histogram")
      expect(scrape.find("telemetry_test_order_size_count")[0]?.value).toBe(3)
      expect(scrape.find("telemetry_test_order_size_sum")[0]?.value).toBe(6)
      // cumulative buckets: nothing ≤ 1, all three ≤ 2
      expect(scrape.find("telemetry_test_order_size_bucket", { le: "1" })[0]?.value).toBe(0)
      expect(scrape.find("telemetry_test_order_size_bucket", { le: "2" })[0]?.value).toBe(3)
      expect(scrape.find("telemetry_test_order_size_bucket", { le: "+Inf" })[0]?.value).toBe(3)
      expect(scrape.find("target_info")[0]?.labels["service_name"]).toBe("telemetry-test")
      // the library's own metrics, from the same scrape: the three receipts ran
      expect(scrape.types.get("effect_background_tasks_finished_total")).toBe("counter")
      expect(scrape.find("effect_background_tasks_finished_total", receipts)[0]?.value).toBe(receiptsBefore + 3)
      expect(scrape.types.get("effect_background_task_lag_seconds")).toBe("histogram")
      expect(scrape.find("effect_background_task_lag_seconds_count", receipts)[0]?.value).toBe(receiptsBefore + 3)
    }))

  it("refuses an empty token or service name when the route is built", () => {
    const error = (build: () => unknown) => {
      try {
        build()
      } catch (thrown) {
        return thrown
      }
      return undefined
    }
    const emptyToken = error(() => Telemetry.prometheusRoute({ token: "" }))
    expect(emptyToken).toBeInstanceOf(InvalidOptionError)
    expect((emptyToken as InvalidOptionError).issues[0]?.option).toBe("token")
    const emptyName = error(() => Telemetry.prometheusRoute({ serviceName: "" }))
    expect(emptyName).toBeInstanceOf(InvalidOptionError)
    expect((emptyName as InvalidOptionError).issues[0]?.option).toBe("serviceName")
  })
})

describe("OpenTelemetry export (@effect/opentelemetry NodeSdk)", () => {
  it.scopedLive("each task's span links to the request that started it, across the durable store too", () =>
    Effect.gen(function*() {
      const folder = mkdtempSync(join(tmpdir(), "telemetry-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(folder, { recursive: true, force: true })))
      const spans = new InMemorySpanExporter()
      const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
      const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 })
      const Welcome = Durable.task("telemetry-welcome", {
        payload: Schema.Struct({ email: Schema.String }),
        run: () => Effect.void
      })
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/signup",
          Effect.gen(function*() {
            yield* BackgroundTasks.add(Effect.void, { name: "telemetry audit" })
            yield* Background.fork(Effect.fail("no mail server"), { name: "telemetry mail" })
            yield* Durable.enqueue(Welcome, { email: "ada@example.com" })
            return HttpServerResponse.empty({ status: 202 })
          })
        )
      )
      const server = yield* start(
        Layer.mergeAll(Server.serve(app), Durable.layer([Welcome])).pipe(
          Layer.provideMerge(Server.layer({ port: 0 })),
          Layer.provideMerge(Durable.sqlite({ filename: join(folder, "tasks.sqlite"), pollInterval: "20 millis" })),
          Layer.provideMerge(Background.layer()),
          Layer.provideMerge(NodeSdk.layer(() => ({
            resource: { serviceName: "telemetry-test" },
            spanProcessor: new SimpleSpanProcessor(spans),
            metricReader: reader
          })))
        )
      ).pipe(Effect.provide(captureLogs().layer))

      expect((yield* request(server.port, "/signup", { method: "POST" })).status).toBe(202)
      const named = (name: string) => spans.getFinishedSpans().find((span) => span.name === name)
      yield* eventually(Effect.sync(() => named("durable telemetry-welcome") !== undefined))
      yield* eventually(Effect.sync(() => named("background telemetry audit") !== undefined && named("background telemetry mail") !== undefined))

      const requestSpan = spans.getFinishedSpans().find((span) => span.name.startsWith("http.server") && span.attributes["url.path"] === "/signup")
      expect(requestSpan).toBeDefined()
      const { spanId, traceId } = requestSpan!.spanContext()
      for (const name of ["background telemetry audit", "background telemetry mail", "durable telemetry-welcome"]) {
        const span = named(name)!
        expect(span.links.map((link) => [link.context.traceId, link.context.spanId])).toContainEqual([traceId, spanId])
      }
      const audit = named("background telemetry audit")!
      expect(audit.attributes["background.kind"]).toBe("after-response")
      expect(audit.links[0]?.attributes?.["link.reason"]).toBe("forked-by")
      // the failed fork's span carries its failure
      const mail = named("background telemetry mail")!
      expect(mail.status.code).toBe(2) // SpanStatusCode.ERROR
      expect(mail.status.message).toContain("no mail server")

      // The metrics reach the OpenTelemetry reader: the library's (the failed fork, by its labels)
      // and an application's own.
      yield* Metric.increment(orders)
      const ordersNow = (yield* Metric.value(orders)).count
      yield* Effect.promise(() => reader.forceFlush())
      const exported = metrics.getMetrics().at(-1)?.scopeMetrics.flatMap((scope) => scope.metrics) ?? []
      const point = (name: string, attributes: Record<string, string> = {}) =>
        exported.find((metric) => metric.descriptor.name === name)?.dataPoints.find((p) =>
          Object.entries(attributes).every(([key, value]) => p.attributes[key] === value)
        )?.value
      expect(point("telemetry_test_orders_total")).toBe(ordersNow)
      expect(point("effect_background_tasks_failed_total", { kind: "task", name: "telemetry mail" })).toBe(1)
      expect(point("effect_background_tasks_finished_total", { kind: "after-response", name: "telemetry audit" })).toBe(1)
    }))
})


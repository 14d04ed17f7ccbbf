// @effect/platform's worker (WorkerRunner) for the tiny-task benchmark.
import { WorkerRunner } from "@effect/platform"
import { NodeRuntime, NodeWorkerRunner } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"

class Increment extends Schema.TaggedRequest()("Increment", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { n: Schema.Number }
}) {}

const Live = WorkerRunner.layerSerialized(Increment, {
  Increment: ({ n }) => Effect.succeed(n + 1)
}).pipe(Layer.provide(NodeWorkerRunner.layer))

NodeRuntime.runMain(WorkerRunner.launch(Live))

import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Either, ExecutionStrategy, Exit, Fiber, Layer, Logger, LogLevel, Option, Scope, TestClock } from "effect"
import { Background, InvalidOptionError, QueueFullError, ShuttingDownError } from "../src/index.js"
import { lazyWorks as taskScopeIsLazy, sharedWorks as taskScopeIsShared } from "../src/internal/background/taskScope.js"
import { makeLogCapture, makeRecordingTracer, startSupervisor } from "./support/unit-harness.js"

/** A task that says when it started and ends when the test lets it. */
const gatedTask = (events: Array<string>, name: string) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const effect = Effect.gen(function*() {
      events.push(`${name} started`)
      yield* Effect.addFinalizer(() => Effect.sync(() => events.push(`${name} finalized`)))
      yield* Deferred.succeed(started, undefined)
      yield* Deferred.await(release)
      events.push(`${name} done`)
    })
    return { effect, started: Deferred.await(started), release: Deferred.succeed(release, undefined) }
  })

const failureOf = (cause: Cause.Cause<unknown>) => Option.getOrUndefined(Cause.failureOption(cause))
const defectOf = (cause: Cause.Cause<unknown>) => Option.getOrUndefined(Cause.dieOption(cause))

describe("Background.fork", () => {
  it.effect("runs the task and hands back a handle that names it and awaits its exit", () =>
    Effect.gen(function*() {
      let ran = false
      const handle = yield* Background.fork(Effect.sync(() => (ran = true)), "set-flag")
      expect(handle).toMatchObject({ name: "set-flag", key: undefined, started: true })
      const exit = yield* handle.await
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ran).toBe(true)
    }).pipe(Effect.provide(Background.layer())))

  it.effect("also reads data-last, with a key", () =>
    Effect.gen(function*() {
      const handle = yield* Effect.succeed(1).pipe(Background.fork({ name: "pipe", key: "k" }))
      expect(handle).toMatchObject({ name: "pipe", key: "k", started: true })
      yield* Background.awaitIdle
    }).pipe(Effect.provide(Background.layer())))

  it.effect("logs a failing task exactly once, with its name and cause, and the caller carries on", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const handle = yield* Background.fork(Effect.fail("smtp down"), "send-email")
      yield* Background.awaitIdle
      const exit = yield* handle.await
      expect(Exit.isFailure(exit)).toBe(true)
      const errors = logs.errors()
      expect(errors).toHaveLength(1)
      expect(errors[0]!.message).toContain("send-email")
      expect(errors[0]!.annotations).toMatchObject({ task: "send-email" })
      expect(failureOf(errors[0]!.cause)).toBe("smtp down")
    }).pipe(Effect.provide(Background.layer()), Effect.provide(logs.layer))
  })

  it.effect("logs a failure exactly once even with debug logging on", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      yield* Background.fork(Effect.fail("smtp down"), "send-email")
      yield* Background.awaitIdle
      const mentions = logs.entries.filter((entry) => failureOf(entry.cause) === "smtp down")
      expect(mentions.map((entry) => entry.level)).toEqual(["ERROR"])
    }).pipe(
      Effect.provide(Background.layer()),
      Effect.provide(logs.layer),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  })

  it.effect("logs a defect exactly once, with its name and cause, and the caller carries on", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      yield* Background.fork(Effect.die(new Error("kaput")), "crashy")
      yield* Background.awaitIdle
      const errors = logs.errors()
      expect(errors).toHaveLength(1)
      expect(errors[0]!.message).toContain("crashy")
      // the tracer annotates defects with the span, so compare by content rather than identity
      expect(defectOf(errors[0]!.cause)).toMatchObject({ message: "kaput" })
    }).pipe(Effect.provide(Background.layer()), Effect.provide(logs.layer))
  })

  it.effect("a failing task does not disturb its running siblings", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const sibling = yield* gatedTask(events, "sibling")
      const siblingHandle = yield* Background.fork(sibling.effect, "sibling")
      yield* sibling.started
      yield* Background.fork(Effect.fail("nope"), "failing")
      yield* Background.fork(Effect.die("worse"), "dying")
      yield* sibling.release
      const exit = yield* siblingHandle.await
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(events).toEqual(["sibling started", "sibling done", "sibling finalized"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("the task outlives the fiber that forked it", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const task = yield* gatedTask(events, "outliver")
      const caller = yield* Effect.fork(Effect.zipRight(Background.fork(task.effect, "outliver"), Effect.never))
      yield* task.started
      yield* Fiber.interrupt(caller)
      yield* task.release
      yield* Background.awaitIdle
      expect(events).toEqual(["outliver started", "outliver done", "outliver finalized"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("rejects a bad name or key with InvalidOptionError naming the option", () =>
    Effect.gen(function*() {
      const empty = yield* Effect.flip(Background.fork(Effect.void, ""))
      expect(empty).toBeInstanceOf(InvalidOptionError)
      expect(empty).toMatchObject({ option: "name", value: "" })
      const padded = yield* Effect.flip(Background.fork(Effect.void, " padded "))
      expect(padded).toMatchObject({ option: "name", value: " padded " })
      const key = yield* Effect.flip(Background.fork(Effect.void, { name: "ok", key: "" }))
      expect(key).toMatchObject({ option: "key", value: "" })
      expect(yield* Background.snapshot).toEqual([])
    }).pipe(Effect.provide(Background.layer())))
})

describe("a task's Scope and span", () => {
  it.effect("a finalizer added by the task runs when the task ends, not when the caller's scope closes", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const task = yield* gatedTask(events, "cleanup")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.sync(() => events.push("caller scope closed")))
        yield* Background.fork(task.effect, "cleanup")
        yield* task.started
      }))
      expect(events).toEqual(["cleanup started", "caller scope closed"])
      yield* task.release
      yield* Background.awaitIdle
      expect(events).toEqual(["cleanup started", "caller scope closed", "cleanup done", "cleanup finalized"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("the task's Scope owns what is forked or opened in it: a scoped fiber is interrupted and a child scope closed when the task ends", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const handle = yield* Background.fork(
        Effect.gen(function*() {
          const running = yield* Deferred.make<void>()
          yield* Effect.forkScoped(
            Deferred.succeed(running, undefined).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Effect.sync(() => events.push("scoped fiber interrupted")))
            )
          )
          yield* Deferred.await(running)
          const scope = yield* Effect.scope
          const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
          yield* Scope.addFinalizer(child, Effect.sync(() => events.push("child scope closed")))
          yield* Effect.addFinalizer(() => Effect.sync(() => events.push("task finalizer")))
          return "done"
        }),
        "owner"
      )
      const exit = yield* handle.await
      expect(exit).toStrictEqual(Exit.succeed("done"))
      // reverse order of acquisition, as Effect.scoped would run them
      expect(events).toEqual(["task finalizer", "child scope closed", "scoped fiber interrupted"])
    }).pipe(Effect.provide(Background.layer())))

  it("task scopes are made the cheap way on this Effect version (else every task falls back to Scope.make)", () => {
    expect(taskScopeIsLazy).toBe(true)
  })

  it("tasks find their scopes through one shared Scope on this Effect version (else each task's context gets its own)", () => {
    expect(taskScopeIsShared).toBe(true)
  })

  it.effect("tasks forked from one fiber, and a task forked by a task, each close only their own scope", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const gates = [yield* Deferred.make<void>(), yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const owned = (name: string, gate: Deferred.Deferred<void>) =>
        Effect.zipRight(
          Effect.addFinalizer(() => Effect.sync(() => events.push(`${name} closed`))),
          Deferred.await(gate)
        )
      const first = yield* Background.fork(owned("first", gates[0]!), "first")
      const second = yield* Background.fork(
        Effect.zipRight(
          Background.fork(owned("inner", gates[2]!), "inner"),
          owned("second", gates[1]!)
        ),
        "second"
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* second.await
      expect(events).toEqual(["second closed"])
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* first.await
      expect(events).toEqual(["second closed", "first closed"])
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* Background.awaitIdle
      expect(events).toEqual(["second closed", "first closed", "inner closed"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("a task that never touches its Scope still has one, and a finalizer added after the task ended runs at once", () =>
    Effect.gen(function*() {
      let leaked: Scope.Scope | undefined
      const handle = yield* Background.fork(Effect.map(Effect.scope, (scope) => (leaked = scope)), "leaks-scope")
      expect(Exit.isSuccess(yield* handle.await)).toBe(true)
      let ran = false
      yield* Scope.addFinalizer(leaked!, Effect.sync(() => (ran = true)))
      expect(ran).toBe(true)
    }).pipe(Effect.provide(Background.layer())))

  it.effect("a finalizer that dies makes the task fail with that defect, reported once", () =>
    Effect.gen(function*() {
      const logs = makeLogCapture()
      const handle = yield* Background.fork(
        Effect.addFinalizer(() => Effect.dieMessage("finalizer broke")),
        "bad-finalizer"
      ).pipe(Effect.provide(logs.layer))
      const exit = yield* handle.await
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("finalizer broke")
      const stats = yield* Background.stats
      expect(stats).toMatchObject({ finished: 1, failed: 1 })
      expect(logs.errors().map((entry) => entry.message)).toEqual(['background task "bad-finalizer" failed'])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("a task forked from an uninterruptible region can still be interrupted", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const task = yield* gatedTask(events, "stuck")
      const handle = yield* Effect.uninterruptible(Background.fork(task.effect, "stuck"))
      yield* task.started
      yield* handle.interrupt
      const exit = yield* handle.await
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(events).toEqual(["stuck started", "stuck finalized"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("runs under a root span linked to the caller's span", () => {
    const tracing = makeRecordingTracer()
    return Effect.gen(function*() {
      yield* Effect.gen(function*() {
        yield* Background.fork(Effect.void.pipe(Effect.withSpan("inner work")), "traced")
      }).pipe(Effect.withSpan("request"))
      yield* Background.awaitIdle
      const [request] = tracing.named("request")
      const [task] = tracing.named("background traced")
      const [inner] = tracing.named("inner work")
      expect(request).toBeDefined()
      expect(task).toBeDefined()
      expect(Option.isNone(task!.parent)).toBe(true)
      expect(task!.traceId).not.toBe(request!.traceId)
      expect(task!.links.map((link) => link.span)).toEqual([request])
      expect(Option.getOrUndefined(inner!.parent)).toBe(task)
      expect(task!.status._tag).toBe("Ended")
    }).pipe(Effect.provide(Background.layer()), Effect.withTracer(tracing.tracer))
  })

  it.effect("a task forked outside any span gets a root span with no links", () => {
    const tracing = makeRecordingTracer()
    return Effect.gen(function*() {
      yield* Background.fork(Effect.void, "untraced")
      yield* Background.awaitIdle
      const [task] = tracing.named("background untraced")
      expect(task?.links).toEqual([])
    }).pipe(Effect.provide(Background.layer()), Effect.withTracer(tracing.tracer))
  })
})

describe("keyed forks", () => {
  it.effect("\"keep\" returns the running task's handle with started: false and never runs the second", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const first = yield* gatedTask(events, "first")
      const a = yield* Background.fork(first.effect, { name: "first", key: "refresh" })
      yield* first.started
      const b = yield* Background.fork(Effect.sync(() => events.push("second ran")), {
        name: "second",
        key: "refresh",
        onConflict: "keep"
      })
      expect(b).toMatchObject({ id: a.id, name: "first", key: "refresh", started: false })
      yield* first.release
      yield* Background.awaitIdle
      expect(events).toEqual(["first started", "first done", "first finalized"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("\"keep\" is the default, and the key is free again once its task ends", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const first = yield* gatedTask(events, "first")
      yield* Background.fork(first.effect, { name: "first", key: "k" })
      const skipped = yield* Background.fork(Effect.sync(() => events.push("skipped ran")), { name: "x", key: "k" })
      expect(skipped.started).toBe(false)
      yield* first.release
      yield* Background.awaitIdle
      const later = yield* Background.fork(Effect.sync(() => events.push("later ran")), { name: "later", key: "k" })
      expect(later.started).toBe(true)
      yield* Background.awaitIdle
      expect(events).toEqual(["first started", "first done", "first finalized", "later ran"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("\"replace\" interrupts the running task, waits for its finalizers, then starts the new one", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const first = yield* gatedTask(events, "first")
      const a = yield* Background.fork(first.effect, { name: "first", key: "refresh" })
      yield* first.started
      const b = yield* Background.fork(Effect.sync(() => events.push("second ran")), {
        name: "second",
        key: "refresh",
        onConflict: "replace"
      })
      expect(b).toMatchObject({ name: "second", key: "refresh", started: true })
      expect(b.id).not.toBe(a.id)
      yield* Background.awaitIdle
      expect(Exit.isInterrupted(yield* a.await)).toBe(true)
      expect(events).toEqual(["first started", "first finalized", "second ran"])
    }).pipe(Effect.provide(Background.layer())))

  // The window between the replaced task's end and its replacement's start is a few scheduler
  // steps wide; each case forks the third task after a different number of them.
  for (
    const { title, ahead, options, left } of [
      {
        title: "a replacement takes the slot of the task it replaces: no other fork slips in past the queue bound",
        ahead: false,
        options: { concurrency: 1, maxQueued: 0 },
        left: [["second", "running"]]
      },
      {
        title: "a replacement of a queued task takes its place in the queue",
        ahead: true,
        options: { concurrency: 1, maxQueued: 1 },
        left: [["running", "running"], ["second", "queued"]]
      }
    ]
  ) {
    it.effect(title, () =>
      Effect.forEach([0, 1, 2, 3, 4], (steps) =>
        Effect.gen(function*() {
          if (ahead) yield* Background.fork(Effect.never, "running")
          yield* Background.fork(Effect.never, { name: "first", key: "k" })
          yield* Background.fork(Effect.never, { name: "second", key: "k", onConflict: "replace" })
          for (let i = 0; i < steps; i++) yield* Effect.yieldNow()
          const third = yield* Effect.either(Background.fork(Effect.never, "third"))
          expect(Either.isLeft(third) ? third.left._tag : "started", `after ${steps} steps`).toBe("QueueFullError")
          for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
          expect((yield* Background.snapshot).map((task) => [task.name, task.state])).toEqual(left)
        }).pipe(Effect.provide(Background.layer({ ...options, grace: 0 }))), { discard: true }))
  }

  it.effect("a replacement interrupted while the task it replaces is still stopping hands the key back to that task", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const slowToStop = Effect.addFinalizer(() =>
        Effect.sleep("100 millis").pipe(Effect.zipRight(Effect.sync(() => events.push("first finalized"))))
      ).pipe(Effect.zipRight(Effect.never))
      const first = yield* Background.fork(slowToStop, { name: "first", key: "k" })
      yield* Effect.yieldNow()
      const second = yield* Background.fork(Effect.sync(() => events.push("second ran")), {
        name: "second",
        key: "k",
        onConflict: "replace"
      })
      yield* Effect.yieldNow()
      yield* second.interrupt
      // "first" is still running its finalizers: the key is still taken, by it
      const third = yield* Background.fork(Effect.sync(() => events.push("third ran")), { name: "third", key: "k" })
      expect(third).toMatchObject({ id: first.id, started: false })
      expect((yield* Background.snapshot).map((task) => task.name)).toEqual(["first"])
      yield* TestClock.adjust("100 millis")
      yield* Background.awaitIdle
      const fourth = yield* Background.fork(Effect.sync(() => events.push("fourth ran")), { name: "fourth", key: "k" })
      expect(fourth.started).toBe(true)
      yield* Background.awaitIdle
      expect(events).toEqual(["first finalized", "fourth ran"])
    }).pipe(Effect.provide(Background.layer())))

  it.effect("in a line of three replacements, the last one interrupted hands the key back to the first, still stopping", () =>
    Effect.gen(function*() {
      const slowToStop = Effect.addFinalizer(() => Effect.sleep("100 millis")).pipe(Effect.zipRight(Effect.never))
      const first = yield* Background.fork(slowToStop, { name: "first", key: "k" })
      yield* Effect.yieldNow()
      yield* Background.fork(Effect.never, { name: "second", key: "k", onConflict: "replace" })
      const third = yield* Background.fork(Effect.never, { name: "third", key: "k", onConflict: "replace" })
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      yield* third.interrupt
      const fourth = yield* Background.fork(Effect.never, { name: "fourth", key: "k" })
      expect(fourth).toMatchObject({ id: first.id, started: false })
      expect((yield* Background.snapshot).map((task) => task.name)).toEqual(["first"])
      yield* TestClock.adjust("100 millis")
      yield* Background.awaitIdle
      expect(yield* Background.snapshot).toEqual([])
    }).pipe(Effect.provide(Background.layer({ grace: 0 }))))

  it.effect("in a line of three replacements, the slot of the first goes to the last, not to a task queued meanwhile", () =>
    Effect.gen(function*() {
      const slowToStop = Effect.addFinalizer(() => Effect.sleep("100 millis")).pipe(Effect.zipRight(Effect.never))
      yield* Background.fork(slowToStop, { name: "first", key: "k" })
      yield* Background.fork(Effect.never, "queued")
      yield* Effect.yieldNow()
      yield* Background.fork(Effect.never, { name: "second", key: "k", onConflict: "replace" })
      yield* Background.fork(Effect.never, { name: "third", key: "k", onConflict: "replace" })
      // "second" ends at once, interrupted by "third"; "first" only once its finalizer is done
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      yield* TestClock.adjust("100 millis")
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      expect((yield* Background.snapshot).map((task) => [task.name, task.state])).toEqual([
        ["queued", "queued"],
        ["third", "running"]
      ])
    }).pipe(Effect.provide(Background.layer({ concurrency: 1, maxQueued: 1, grace: 0 }))))

  it.effect("replacements in quick succession keep one task per key: the third waits for the first's finalizers too", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const slowToStop = (name: string) =>
        Effect.gen(function*() {
          events.push(`${name} started`)
          yield* Effect.addFinalizer(() =>
            Effect.sleep("1 second").pipe(Effect.zipRight(Effect.sync(() => events.push(`${name} finalized`))))
          )
          return yield* Effect.never
        })
      yield* Background.fork(slowToStop("A1"), { name: "A1", key: "k" })
      yield* Background.fork(slowToStop("A2"), { name: "A2", key: "k", onConflict: "replace" })
      const a3 = yield* Background.fork(slowToStop("A3"), { name: "A3", key: "k", onConflict: "replace" })
      yield* TestClock.adjust("2 seconds")
      // A2 never started (replaced while it waited for A1); A3 starts only once A1 is gone
      expect(events).toEqual(["A1 started", "A1 finalized", "A3 started"])
      const stopping = yield* Effect.fork(a3.interrupt)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
    }).pipe(Effect.provide(Background.layer())))

  it.effect("rejects an unknown onConflict policy", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        // @ts-expect-error: not a policy
        Background.fork(Effect.void, { name: "x", key: "k", onConflict: "merge" })
      )
      expect(error).toMatchObject({ _tag: "InvalidOptionError", option: "onConflict", value: "merge" })
    }).pipe(Effect.provide(Background.layer())))
})

describe("concurrency cap and bounded queue", () => {
  const capped = Background.layer({ concurrency: 1, maxQueued: 1 })

  it.effect("with concurrency 1 and maxQueued 1, a third fork fails with QueueFullError", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const a = yield* gatedTask(events, "a")
      yield* Background.fork(a.effect, "a")
      yield* Background.fork(Effect.sync(() => events.push("b ran")), "b")
      const error = yield* Effect.flip(Background.fork(Effect.sync(() => events.push("c ran")), "c"))
      expect(error).toBeInstanceOf(QueueFullError)
      expect(error).toMatchObject({ task: "c", concurrency: 1, maxQueued: 1 })
      yield* a.release
      yield* Background.awaitIdle
      expect(events).toEqual(["a started", "a done", "a finalized", "b ran"])
    }).pipe(Effect.provide(capped)))

  it.effect("rejects even when all three forks happen in one synchronous step", () =>
    Effect.gen(function*() {
      const never = Effect.never
      const results = yield* Effect.all([
        Effect.either(Background.fork(never, "a")),
        Effect.either(Background.fork(never, "b")),
        Effect.either(Background.fork(never, "c"))
      ])
      expect(results.map((result) => result._tag)).toEqual(["Right", "Right", "Left"])
    }).pipe(Effect.provide(Background.layer({ concurrency: 1, maxQueued: 1, grace: 0 }))))

  it.effect("queued tasks start in the order they were forked, as slots free up", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const first = yield* gatedTask(events, "first")
      yield* Background.fork(first.effect, "first")
      for (const name of ["q1", "q2", "q3"]) {
        yield* Background.fork(Effect.sync(() => events.push(name)), name)
      }
      expect(events).toEqual(["first started"])
      yield* first.release
      yield* Background.awaitIdle
      expect(events).toEqual(["first started", "first done", "first finalized", "q1", "q2", "q3"])
    }).pipe(Effect.provide(Background.layer({ concurrency: 1, maxQueued: 3 }))))

  it.effect("interrupting a queued task removes it from the queue: it never runs and frees its place", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const a = yield* gatedTask(events, "a")
      yield* Background.fork(a.effect, "a")
      const b = yield* Background.fork(Effect.sync(() => events.push("b ran")), "b")
      yield* b.interrupt
      expect(Exit.isInterrupted(yield* b.await)).toBe(true)
      yield* Background.fork(Effect.sync(() => events.push("c ran")), "c")
      expect((yield* Background.snapshot).map((task) => [task.name, task.state])).toEqual([
        ["a", "running"],
        ["c", "queued"]
      ])
      yield* a.release
      yield* Background.awaitIdle
      expect(events).toEqual(["a started", "a done", "a finalized", "c ran"])
    }).pipe(Effect.provide(capped)))

  it.effect("snapshot shows each task's name, key, kind and state, queued vs running", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1 second")
      const events: Array<string> = []
      const a = yield* gatedTask(events, "a")
      const b = yield* gatedTask(events, "b")
      const ha = yield* Background.fork(a.effect, { name: "a", key: "ka" })
      const hb = yield* Background.fork(b.effect, "b")
      const tasks = yield* Background.snapshot
      expect(tasks).toEqual([
        { id: ha.id, name: "a", key: "ka", kind: "task", state: "running", submittedAt: 1000, startedAt: 1000 },
        { id: hb.id, name: "b", key: undefined, kind: "task", state: "queued", submittedAt: 1000, startedAt: undefined }
      ])
      yield* a.release
      yield* b.started
      expect((yield* Background.snapshot).map((task) => [task.name, task.state])).toEqual([["b", "running"]])
      yield* b.release
      yield* Background.awaitIdle
      expect(yield* Background.snapshot).toEqual([])
    }).pipe(Effect.provide(capped)))

  it.effect("awaitIdle waits for queued tasks as well as running ones", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      yield* Background.fork(Effect.sleep("1 second").pipe(Effect.zipRight(Effect.sync(() => events.push("a")))), "a")
      yield* Background.fork(Effect.sleep("1 second").pipe(Effect.zipRight(Effect.sync(() => events.push("b")))), "b")
      const idle = yield* Effect.fork(Background.awaitIdle)
      yield* TestClock.adjust("1 second")
      expect(events).toEqual(["a"])
      expect(idle.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(idle)
      expect(events).toEqual(["a", "b"])
    }).pipe(Effect.provide(capped)))
})

describe("shutdown", () => {
  it.effect("once shutdown has begun, fork fails with ShuttingDownError and the task never runs", () =>
    Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: "10 seconds" }))
      yield* bg.use(Background.fork(Effect.sleep("5 seconds"), "slow"))
      const isShuttingDown = bg.use(Effect.flatMap(Background.Background, (service) => service.isShuttingDown))
      expect(yield* isShuttingDown).toBe(false)
      const closing = yield* Effect.fork(bg.shutdown)
      while (!(yield* isShuttingDown)) yield* Effect.yieldNow()
      let ran = false
      const error = yield* Effect.flip(bg.use(Background.fork(Effect.sync(() => (ran = true)), "late")))
      expect(error).toBeInstanceOf(ShuttingDownError)
      expect(error).toMatchObject({ task: "late" })
      const keyed = yield* Effect.flip(bg.use(Background.fork(Effect.void, { name: "late-keyed", key: "k" })))
      expect(keyed).toBeInstanceOf(ShuttingDownError)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(closing)
      expect(ran).toBe(false)
      expect(bg.record.background?.rejected).toBe(2)
    }))

  it.effect("tasks that finish within the grace period finish; they are not interrupted", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const bg = yield* startSupervisor(Background.layer({ grace: "5 seconds" }))
      yield* bg.use(Background.fork(
        Effect.sleep("3 seconds").pipe(
          Effect.zipRight(Effect.sync(() => events.push("finished"))),
          Effect.onInterrupt(() => Effect.sync(() => events.push("interrupted")))
        ),
        "short"
      ))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(closing)
      expect(events).toEqual(["finished"])
      expect(bg.record.background).toMatchObject({
        graceMillis: 3000,
        finished: 1,
        interrupted: 0,
        interruptedNames: []
      })
    }))

  it.effect("shutdown ends as soon as pending work is done, without waiting out the grace", () =>
    Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: "1 hour" }))
      yield* bg.use(Background.fork(Effect.void, "instant"))
      yield* bg.shutdown
      expect(bg.record.background).toMatchObject({ graceMillis: 0, interruptMillis: 0, finished: 1 })
    }))

  it.effect("tasks still running when the grace ends are interrupted in parallel and their finalizers run", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const bg = yield* startSupervisor(Background.layer({ grace: "2 seconds", interruptTimeout: "5 seconds" }))
      for (const name of ["slow-1", "slow-2"]) {
        yield* bg.use(Background.fork(
          Effect.never.pipe(
            Effect.onInterrupt(() =>
              Effect.sleep("1 second").pipe(Effect.zipRight(Effect.sync(() => events.push(`${name} finalized`))))
            )
          ),
          name
        ))
      }
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1999 millis")
      expect(events).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(events).toEqual([])
      // both finalizers take one second; run one after another they would need two
      yield* TestClock.adjust("1 second")
      expect(events.sort()).toEqual(["slow-1 finalized", "slow-2 finalized"])
      yield* Fiber.join(closing)
      expect(bg.record.background).toMatchObject({
        graceMillis: 2000,
        interruptMillis: 1000,
        interrupted: 2,
        interruptedNames: ["slow-1", "slow-2"],
        stillRunning: []
      })
    }))

  it.effect("the shutdown log names the first 20 interrupted tasks and counts the rest; the report names them all", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: 0 }).pipe(Layer.provide(logs.layer)))
      const names = Array.from({ length: 25 }, (_, i) => `sleeper-${i}`)
      for (const name of names) yield* bg.use(Background.fork(Effect.never, name))
      yield* bg.shutdown
      expect(bg.record.background?.interruptedNames).toEqual(names)
      const warning = logs.entries.find((entry) => entry.message.startsWith("background: grace period ended"))
      expect(warning?.message).toBe(
        `background: grace period ended; interrupted ${names.slice(0, 20).join(", ")} and 5 more (all in the shutdown report)`
      )
    })
  })

  it.effect("queued tasks still waiting when the grace ends are interrupted and never run", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const bg = yield* startSupervisor(Background.layer({ concurrency: 1, grace: "1 second" }))
      yield* bg.use(Background.fork(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => events.push("running interrupted")))),
        "running"
      ))
      yield* bg.use(Background.fork(Effect.sync(() => events.push("queued ran")), "queued"))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(events).toEqual(["running interrupted"])
      expect(bg.record.background).toMatchObject({
        finished: 0,
        interrupted: 2,
        interruptedNames: ["running", "queued"]
      })
    }))

  it.effect("a task forked from an uninterruptible region is interrupted at shutdown all the same", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const bg = yield* startSupervisor(Background.layer({ grace: 0 }))
      yield* Effect.uninterruptible(bg.use(Background.fork(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => events.push("interrupted")))),
        "hostage"
      )))
      yield* bg.shutdown
      expect(events).toEqual(["interrupted"])
      expect(bg.record.stillRunning).toEqual([])
    }))

  it.effect("daemons run through the grace period and are interrupted at its end, finalizers run", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const daemon = Background.daemon(
        Effect.addFinalizer(() => Effect.sync(() => events.push("daemon finalized"))).pipe(
          Effect.zipRight(Effect.never)
        ),
        "ticker"
      )
      const bg = yield* startSupervisor(daemon.pipe(Layer.provideMerge(Background.layer({ grace: "3 seconds" }))))
      yield* bg.use(Background.fork(Effect.sleep("2 seconds"), "pending"))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      // shutdown has begun, but the daemon runs on through the grace
      expect(events).toEqual([])
      expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
      yield* TestClock.adjust("1 second")
      // the daemon does not count as pending work: the grace ends when "pending" does
      yield* Fiber.join(closing)
      expect(events).toEqual(["daemon finalized"])
      expect(bg.record.background).toMatchObject({
        graceMillis: 2000,
        interruptedNames: [],
        stillRunning: [],
        // a daemon is stopped, not counted as interrupted work
        finished: 1,
        interrupted: 0,
        jobsStopped: 1
      })
    }))

  it.effect("gives up on a finalizer that outlasts interruptTimeout, names it, and logs it", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: "1 second", interruptTimeout: "2 seconds" }))
      yield* bg.use(Background.fork(Effect.never.pipe(Effect.onInterrupt(() => Effect.never)), "stubborn"))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      expect(closing.unsafePoll()).toBeNull()
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(closing)
      expect(bg.record.background).toMatchObject({ graceMillis: 1000, interruptMillis: 2000, stillRunning: ["stubborn"] })
      expect(logs.errors().map((entry) => entry.message)).toEqual([
        "background: still running after interruption timeout: stubborn"
      ])
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("counts finished, failed, interrupted and rejected tasks in the shutdown record", () =>
    Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ concurrency: 1, maxQueued: 0, grace: "1 second" }))
      yield* bg.use(Background.fork(Effect.void, "ok"))
      yield* bg.use(Background.fork(Effect.fail("bad"), "bad"))
      yield* bg.use(Background.fork(Effect.never, "stuck"))
      yield* Effect.flip(bg.use(Background.fork(Effect.void, "rejected")))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(bg.record.background).toMatchObject({
        finished: 2,
        failed: 1,
        interrupted: 1,
        rejected: 1,
        interruptedNames: ["stuck"]
      })
    }))
})

describe("Background.layer options", () => {
  const buildError = (options: Background.Options) => Effect.flip(Effect.scoped(Layer.build(Background.layer(options))))

  const invalid: ReadonlyArray<readonly [string, Background.Options, string, unknown]> = [
    ["concurrency 0", { concurrency: 0 }, "concurrency", 0],
    ["concurrency -1", { concurrency: -1 }, "concurrency", -1],
    ["concurrency 1.5", { concurrency: 1.5 }, "concurrency", 1.5],
    ["concurrency NaN", { concurrency: Number.NaN }, "concurrency", Number.NaN],
    // @ts-expect-error: not a concurrency
    ["concurrency \"x\"", { concurrency: "x" }, "concurrency", "x"],
    ["maxQueued -1", { maxQueued: -1 }, "maxQueued", -1],
    ["maxQueued Infinity", { maxQueued: Number.POSITIVE_INFINITY }, "maxQueued", Number.POSITIVE_INFINITY],
    ["grace -1", { grace: -1 }, "grace", -1],
    ["grace NaN", { grace: Number.NaN }, "grace", Number.NaN],
    ["grace Infinity", { grace: Number.POSITIVE_INFINITY }, "grace", Number.POSITIVE_INFINITY],
    ["grace \"-1 seconds\"", { grace: "-1 seconds" }, "grace", "-1 seconds"],
    ["grace -1n nanoseconds", { grace: -1n }, "grace", -1n],
    ["grace [-1, 0] hrtime", { grace: [-1, 0] }, "grace", [-1, 0]],
    // @ts-expect-error: not a duration
    ["grace \"soon\"", { grace: "soon" }, "grace", "soon"],
    ["interruptTimeout -5", { interruptTimeout: -5 }, "interruptTimeout", -5],
    ["interruptTimeout \"-2 minutes\"", { interruptTimeout: "-2 minutes" }, "interruptTimeout", "-2 minutes"]
  ]

  for (const [label, options, option, value] of invalid) {
    it.effect(`fails to build with InvalidOptionError for ${label}`, () =>
      Effect.gen(function*() {
        const error = yield* buildError(options)
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect(error.option).toBe(option)
        expect(error.value).toEqual(value)
        expect(error.message).toContain(option)
      }))
  }

  it.effect("accepts zero grace, zero queue, \"unbounded\" concurrency and duration strings", () =>
    Effect.gen(function*() {
      yield* Effect.scoped(Layer.build(Background.layer({ grace: 0, interruptTimeout: "0 millis", maxQueued: 0 })))
      yield* Effect.scoped(Layer.build(Background.layer({ concurrency: "unbounded", grace: "2 seconds" })))
      yield* Effect.scoped(Layer.build(Background.layer({ concurrency: 4, interruptTimeout: [1, 0] })))
    }))

  it.effect("with unbounded concurrency nothing ever queues", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 50; i++) yield* Background.fork(Effect.never, `t${i}`)
      const states = new Set((yield* Background.snapshot).map((task) => task.state))
      expect([...states]).toEqual(["running"])
    }).pipe(Effect.provide(Background.layer({ maxQueued: 0, grace: 0 }))))
})

describe("Background.stats", () => {
  it.effect("counts finished, failed and rejected tasks as they happen", () =>
    Effect.gen(function*() {
      yield* Background.fork(Effect.void, "ok")
      yield* Background.fork(Effect.fail("boom"), "bad")
      yield* Background.awaitIdle
      expect(yield* Background.stats).toMatchObject({ finished: 2, failed: 1, interrupted: 0, rejected: 0 })
      // the only slot taken and no queue: the next fork is refused, and counted
      const release = yield* Deferred.make<void>()
      yield* Background.fork(Deferred.await(release), "holds-the-slot")
      const refused = yield* Effect.flip(Background.fork(Effect.void, "refused"))
      expect(refused).toBeInstanceOf(QueueFullError)
      expect(yield* Background.stats).toMatchObject({ finished: 2, failed: 1, interrupted: 0, rejected: 1 })
      yield* Deferred.succeed(release, undefined)
      yield* Background.awaitIdle
    }).pipe(
      Effect.provide(Background.layer({ concurrency: 1, maxQueued: 0 })),
      Effect.provide(Logger.remove(Logger.defaultLogger))
    ))
})

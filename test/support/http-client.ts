/**
 * Real HTTP clients for integration tests: one-shot requests over `node:http`, a streamed request
 * that can be cut off mid-body, and a raw TCP connection for keep-alive and half-sent requests.
 */
import { Data, Deferred, Effect, Exit, FiberId, Schedule } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"

export class ClientError extends Data.TaggedError("ClientError")<{ readonly cause: unknown }> {
  get code(): string | undefined {
    const cause = this.cause as { code?: unknown }
    return typeof cause?.code === "string" ? cause.code : undefined
  }
}

export interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Http.OutgoingHttpHeaders
  readonly body?: string
  /** Defaults to a fresh connection per request (`agent: false`). */
  readonly agent?: Http.Agent | false
}

const send = (port: number, path: string, options: RequestOptions, signal: AbortSignal) =>
  Http.request({
    host: "127.0.0.1",
    port,
    path,
    method: options.method ?? "GET",
    headers: options.headers,
    agent: options.agent ?? false,
    signal
  })

/** Sends one request and reads the whole response. */
export const request = (port: number, path: string, options: RequestOptions = {}): Effect.Effect<Reply, ClientError> =>
  Effect.async<Reply, ClientError>((resume, signal) => {
    const req = send(port, path, options, signal)
    req.on("error", (cause) => resume(Effect.fail(new ClientError({ cause }))))
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("error", (cause) => resume(Effect.fail(new ClientError({ cause }))))
      res.on("end", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8")
        })))
    })
    req.end(options.body)
  })

/** A response whose body is being read: chunks arrive one by one, and the client can hang up. */
export interface OpenResponse {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  /** Waits until the body received so far contains `text`. */
  readonly received: (text: string) => Effect.Effect<void>
  /** Reads the rest of the body and returns all of it. */
  readonly rest: Effect.Effect<string, ClientError>
  /** Destroys the socket (the client disconnects). */
  readonly hangUp: Effect.Effect<void>
}

/** Sends a request and returns as soon as the response head has arrived. */
export const open = (port: number, path: string, options: RequestOptions = {}): Effect.Effect<OpenResponse, ClientError> =>
  Effect.async<OpenResponse, ClientError>((resume) => {
    const controller = new AbortController()
    const req = send(port, path, options, controller.signal)
    req.on("error", (cause) => resume(Effect.fail(new ClientError({ cause }))))
    req.on("response", (res) => {
      let body = ""
      let waiters: Array<() => void> = []
      const ended = Deferred.unsafeMake<string, ClientError>(FiberId.none)
      const wake = () => {
        const current = waiters
        waiters = []
        for (const waiter of current) waiter()
      }
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        body += chunk
        wake()
      })
      res.on("end", () => Deferred.unsafeDone(ended, Exit.succeed(body)))
      res.on("error", (cause) => Deferred.unsafeDone(ended, Exit.fail(new ClientError({ cause }))))
      const received = (text: string): Effect.Effect<void> =>
        Effect.suspend(() =>
          body.includes(text)
            ? Effect.void
            : Effect.flatMap(Effect.async<void>((wakeUp) => {
              waiters.push(() => wakeUp(Effect.void))
            }), () => received(text))
        )
      resume(Effect.succeed({
        status: res.statusCode ?? 0,
        headers: res.headers,
        received,
        rest: Deferred.await(ended),
        hangUp: Effect.sync(() => req.destroy())
      }))
    })
    req.end(options.body)
    return Effect.sync(() => controller.abort())
  })

/** Whether a new TCP connection to the port is refused. */
export const connectionRefused = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code === "ECONNREFUSED")))
  })

/**
 * A raw HTTP/1.1 connection: write request bytes exactly as given (half a request, two on one
 * socket) and read responses framed by `Content-Length`.
 */
export class RawConnection {
  private buffer = Buffer.alloc(0)
  private waiters: Array<() => void> = []
  private readonly closedLatch = Deferred.unsafeMake<void>(FiberId.none)
  closed = false

  private constructor(readonly socket: Net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.wake()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      this.closed = true
      Deferred.unsafeDone(this.closedLatch, Exit.void)
      this.wake()
    })
  }

  static connect(port: number): Effect.Effect<RawConnection, ClientError> {
    return Effect.async<RawConnection, ClientError>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      socket.once("connect", () => resume(Effect.succeed(new RawConnection(socket))))
      socket.once("error", (cause) => resume(Effect.fail(new ClientError({ cause }))))
    })
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter()
  }

  write(text: string): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      this.socket.write(text, () => resume(Effect.void))
    })
  }

  /** Reads the next response; fails if the server closes the connection before it is complete. */
  readonly readResponse: Effect.Effect<Reply, ClientError> = Effect.suspend(() => {
    const end = this.buffer.indexOf("\r\n\r\n")
    if (end >= 0) {
      const head = this.buffer.subarray(0, end).toString("latin1").split("\r\n")
      const status = Number(head[0]!.split(" ")[1])
      const headers: Http.IncomingHttpHeaders = {}
      for (const line of head.slice(1)) {
        const colon = line.indexOf(":")
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const length = Number(headers["content-length"] ?? 0)
      if (this.buffer.length >= end + 4 + length) {
        const body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8")
        this.buffer = this.buffer.subarray(end + 4 + length)
        return Effect.succeed({ status, headers, body })
      }
    }
    if (this.closed) {
      return Effect.fail(new ClientError({ cause: new Error("connection closed before a full response") }))
    }
    return Effect.flatMap(
      Effect.async<void>((resume) => {
        this.waiters.push(() => resume(Effect.void))
      }),
      () => this.readResponse
    )
  })

  /** Waits until the bytes received and not yet read as a response contain `text`. */
  received(text: string): Effect.Effect<void, ClientError> {
    return Effect.suspend(() => {
      if (this.buffer.includes(text)) return Effect.void
      if (this.closed) return Effect.fail(new ClientError({ cause: new Error(`connection closed before "${text}"`) }))
      return Effect.flatMap(
        Effect.async<void>((resume) => {
          this.waiters.push(() => resume(Effect.void))
        }),
        () => this.received(text)
      )
    })
  }

  /** Completes when the server (or the client) has closed the connection. */
  readonly awaitClosed: Effect.Effect<void> = Deferred.await(this.closedLatch)

  readonly destroy: Effect.Effect<void> = Effect.sync(() => this.socket.destroy())
}

/** `GET <path>` as raw bytes, for {@link RawConnection.write}. */
export const rawGet = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`

/** Polls `condition` until it holds (for states only observable by looking, e.g. readiness). */
export const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  condition.pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("5 millis") }),
    Effect.asVoid
  )

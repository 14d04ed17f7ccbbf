/**
 * Steady, bounded load from a few keep-alive clients, and what each request's client saw. A client
 * sends its requests one after another on one kept-alive socket (a new one whenever the server
 * closes it) until its connection is refused, or its count or time runs out.
 */
import * as Http from "node:http"

export interface Attempt {
  readonly id: number
  readonly outcome: "answered" | "refused" | "unanswered"
  /** Status and `Connection` header, when answered. */
  readonly status: number | undefined
  readonly connectionClose: boolean
  /** The error's code (or message) when not answered. */
  readonly error: string | undefined
  /** Whether the request went out on a socket that had already carried a request. */
  readonly reusedSocket: boolean
  /** Whether any byte of a response arrived before the error. */
  readonly responseStarted: boolean
  /** When the whole request had been handed to the socket (undefined if it never was). */
  readonly writtenAt: number | undefined
  readonly endedAt: number
}

export interface LoadOptions {
  readonly clients: number
  /** Requests at most, all clients together. */
  readonly maxRequests: number
  /** Each client stops sending after this long. */
  readonly maxMillis: number
  /** A request that gets no answer within this long is given up on (and counts as unanswered). */
  readonly requestTimeoutMillis: number
  /** The path of request `id`. */
  readonly path: (id: number) => string
}

export interface Load {
  readonly attempts: ReadonlyArray<Attempt>
  /** How many requests were answered so far. */
  readonly answered: () => number
  /** Settles once every client has stopped. */
  readonly done: Promise<void>
}

const send = (port: number, agent: Http.Agent, id: number, options: LoadOptions): Promise<Attempt> =>
  new Promise((resolve) => {
    let settled = false
    let responseStarted = false
    let writtenAt: number | undefined
    const req = Http.request({ host: "127.0.0.1", port, method: "POST", path: options.path(id), agent })
    const settle = (attempt: Omit<Attempt, "id" | "reusedSocket" | "responseStarted" | "writtenAt" | "endedAt">) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...attempt, id, reusedSocket: req.reusedSocket, responseStarted, writtenAt, endedAt: Date.now() })
    }
    const fail = (error: NodeJS.ErrnoException) =>
      settle({
        outcome: error.code === "ECONNREFUSED" && !responseStarted ? "refused" : "unanswered",
        status: undefined,
        connectionClose: false,
        error: error.code ?? error.message
      })
    const timer = setTimeout(() => req.destroy(new Error("client timeout")), options.requestTimeoutMillis)
    req.on("finish", () => (writtenAt = Date.now()))
    req.on("error", fail)
    req.on("response", (res) => {
      responseStarted = true
      res.on("data", () => undefined)
      res.on("error", fail)
      res.on("end", () =>
        settle({
          outcome: "answered",
          status: res.statusCode,
          connectionClose: res.headers.connection === "close",
          error: undefined
        }))
    })
    req.end()
  })

/** Starts the clients; request ids are 1, 2, 3… across all of them. */
export const startLoad = (port: number, options: LoadOptions): Load => {
  const attempts: Array<Attempt> = []
  let nextId = 1
  let answered = 0
  const deadline = Date.now() + options.maxMillis
  const client = async () => {
    const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      while (nextId <= options.maxRequests && Date.now() < deadline) {
        const attempt = await send(port, agent, nextId++, options)
        attempts.push(attempt)
        if (attempt.outcome === "answered") answered++
        // The listener is closed: the server is going away and so does this client.
        if (attempt.outcome === "refused") return
      }
    } finally {
      agent.destroy()
    }
  }
  const done = Promise.all(Array.from({ length: options.clients }, client)).then(() => undefined)
  return { attempts, answered: () => answered, done }
}

/** Polls until `condition` holds, for at most `timeoutMillis` (an upper bound, not a threshold). */
export const until = async (condition: () => boolean, timeoutMillis: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeoutMillis
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never happened within ${timeoutMillis}ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

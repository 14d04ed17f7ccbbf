// The effect-background inspector page: reads the server's live view (server-sent events from
// <base>/api/stream, read with fetch so that the token goes in an Authorization header) and
// renders it. Plain JavaScript, no dependencies; every value is written as text, never as HTML.
"use strict"

const base = document.body.dataset.base
const TOKEN_KEY = "effect-background-inspector-token"
const $ = (id) => document.getElementById(id)

// A token in the URL's fragment (never sent to the server) is kept for this tab and taken out
// of the address bar.
const fromFragment = /(?:^#|&)token=([^&]*)/.exec(location.hash)
if (fromFragment !== null) {
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(fromFragment[1]))
  history.replaceState(null, "", location.pathname + location.search)
}
const token = () => sessionStorage.getItem(TOKEN_KEY)
const headers = () => (token() ? { authorization: `Bearer ${token()}` } : {})

$("auth").addEventListener("submit", (event) => {
  event.preventDefault()
  const given = $("token").value.trim()
  if (given === "") return
  sessionStorage.setItem(TOKEN_KEY, given)
  $("token").value = ""
  restart()
})

// ----- rendering ---------------------------------------------------------------------------

const el = (tag, text, className) => {
  const node = document.createElement(tag)
  if (text !== undefined && text !== null) node.textContent = String(text)
  if (className) node.className = className
  return node
}

const row = (cells, attributes = {}) => {
  const tr = document.createElement("tr")
  for (const [name, value] of Object.entries(attributes)) tr.setAttribute(name, value)
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell))
  return tr
}

const fill = (tbody, rows, empty, columns) => {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [row([el("td", empty, "muted")])]))
  if (rows.length === 0) tbody.firstChild.firstChild.colSpan = columns
}

const duration = (millis) => {
  if (millis === null || millis === undefined) return "–"
  const s = Math.max(0, millis) / 1000
  if (s < 1) return `${Math.round(millis)} ms`
  if (s < 60) return `${s.toFixed(1)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
}

const origin = (request) => (request === null ? "–" : `${request.method} ${request.route ?? "(no route)"}`)

/** A failure's first line, with the whole cause (stack included) one click away. */
const causeCell = (cause, prefix = "") => {
  const td = document.createElement("td")
  if (cause === null) {
    td.textContent = "–"
    return td
  }
  const details = el("details")
  details.append(el("summary", `${prefix}${cause.split("\n")[0]}`, "failure"))
  details.append(el("pre", cause, "cause"))
  td.append(details)
  return td
}

const failureCell = (failure, now) =>
  causeCell(failure === null ? null : failure.cause, failure === null ? "" : `${duration(now - failure.at)} ago: `)

const STATES = ["pending", "scheduled", "running", "retrying", "dead"]

const render = (view) => {
  $("data").hidden = false
  const { now, phase } = view

  const badge = $("phase")
  badge.textContent = phase.name
  badge.className = `badge ${phase.name}`
  const shutdown = $("shutdown")
  shutdown.hidden = phase.name === "serving"
  if (phase.name !== "serving") {
    const parts = [`${phase.name} since ${phase.since === null ? "–" : duration(now - phase.since)}`]
    if (phase.requestsInFlight !== null) parts.push(`${phase.requestsInFlight} request(s) in flight`)
    const running = view.tasks.filter((task) => task.state === "running").map((task) => task.name)
    parts.push(running.length > 0 ? `still running: ${running.join(", ")}` : "no task running")
    $("shutdown-text").textContent = parts.join("; ")
  }

  $("task-count").textContent = `(${view.tasks.length})`
  fill($("tasks").tBodies[0], view.tasks.map((task) =>
    row([
      task.name,
      task.kind,
      task.state,
      duration(now - task.submittedAt),
      origin(task.request)
    ], { "data-name": task.name, "data-state": task.state })), "no task", 5)
  const s = view.stats
  $("totals").textContent = `so far: ${s.finished} finished (${s.failed} failed), ${s.interrupted} interrupted, ` +
    `${s.rejected} rejected, ${s.skipped} skipped; job failures ${s.jobFailures}`

  fill($("jobs").tBodies[0], view.jobs.map((job) =>
    row([
      job.name,
      job.kind,
      job.state,
      job.nextRunAt === null ? "–" : `in ${duration(job.nextRunAt - now)}`,
      job.failures,
      failureCell(job.lastFailure, now)
    ], { "data-name": job.name, "data-state": job.state })), "no daemon or schedule", 6)

  const durable = view.durable
  $("durable").hidden = durable === null
  if (durable !== null) {
    $("durable-store").textContent = durable.store
    $("durable-error").hidden = durable.error === undefined
    $("durable-error").textContent = durable.error ?? ""
    const byName = new Map()
    for (const { count, name, state } of durable.counts ?? []) {
      if (!byName.has(name)) byName.set(name, {})
      byName.get(name)[state] = count
    }
    fill($("durable-counts").tBodies[0], [...byName].sort(([a], [b]) => a.localeCompare(b)).map(([name, counts]) =>
      row([name, ...STATES.map((state) => counts[state] ?? 0)], { "data-name": name })), "nothing pending, running or dead", 6)
    fill($("dead").tBodies[0], (durable.dead ?? []).map((task) => {
      const actions = el("td", null, "actions")
      if (view.actions) {
        const retry = el("button", "retry now", "retry")
        retry.addEventListener("click", () => act("retry", task.id, retry))
        const discard = el("button", "discard", "discard")
        discard.addEventListener("click", () => act("discard", task.id, discard))
        actions.append(retry, discard)
      }
      return row([task.id, task.name, task.attempts, causeCell(task.lastFailure), actions], {
        "data-id": task.id,
        "data-name": task.name
      })
    }), "no dead task", 5)
    const local = durable.thisProcess
    $("durable-local").textContent = `this process: ${local.done} done, ${local.retried} retried, ${local.dead} dead, ` +
      `${local.released} released` + (view.actions ? "" : " · actions need the page's token")
  }

  const offload = view.offload
  $("offload").hidden = offload === null
  if (offload !== null) {
    fill($("offload-stats").tBodies[0], [
      row([offload.threads, offload.busy, offload.queued, offload.spawned, offload.crashed, offload.spare])
    ], "", 6)
  }
}

const say = (id, text) => {
  $(id).hidden = text === null
  $(id).textContent = text ?? ""
}

// ----- actions on dead durable tasks ---------------------------------------------------------

const act = async (action, id, button) => {
  button.disabled = true
  try {
    const response = await fetch(`${base}/api/durable/${encodeURIComponent(id)}/${action}`, {
      method: "POST",
      headers: headers()
    })
    const body = await response.json().catch(() => ({}))
    if (!response.ok) say("message", `${action} ${id} failed: ${body.error ?? response.status}`)
    else if (action === "retry") say("message", `retried ${id}: now ${body.state ?? "gone"}`)
    else say("message", `discarded ${id}`)
  } catch (error) {
    say("message", `${action} ${id} failed: ${error.message}`)
  } finally {
    button.disabled = false
  }
}

// ----- the live stream -----------------------------------------------------------------------

let generation = 0
let lastPhase = null

const unauthorized = () => {
  // Nothing of the server's is kept on screen without the token.
  $("data").hidden = true
  for (const table of document.querySelectorAll("tbody")) table.replaceChildren()
  $("auth").hidden = false
  say("notice", token() ? "This token was refused. Enter the inspector's token." : "This page needs the inspector's token.")
  $("connection").textContent = "unauthorized"
}

const connect = async (mine) => {
  const response = await fetch(`${base}/api/stream`, { headers: headers(), cache: "no-store" })
  if (response.status === 401) return "unauthorized"
  if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`)
  $("auth").hidden = true
  say("notice", null)
  $("connection").textContent = "live"
  $("data").classList.remove("stale")
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { done, value } = await reader.read()
    if (done || mine !== generation) {
      reader.cancel().catch(() => {})
      return "ended"
    }
    buffer += value
    let end
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = chunk.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n")
      if (data === "") continue
      const view = JSON.parse(data)
      lastPhase = view.phase.name
      render(view)
    }
  }
}

const run = async (mine) => {
  while (mine === generation) {
    let outcome
    try {
      outcome = await connect(mine)
    } catch {
      outcome = "lost"
    }
    if (mine !== generation) return
    if (outcome === "unauthorized") return unauthorized()
    if (outcome === "lost") {
      $("connection").textContent = lastPhase === "draining"
        ? "disconnected: the server has stopped serving (it was draining)"
        : "disconnected; retrying…"
      $("data").classList.add("stale")
    }
    // A stream that ended on its own is opened again at once; a lost one after a second.
    await new Promise((resolve) => setTimeout(resolve, outcome === "ended" ? 0 : 1000))
  }
}

const restart = () => {
  generation++
  $("data").classList.remove("stale")
  run(generation)
}

restart()

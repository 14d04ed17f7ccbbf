/**
 * Reading a server process's output: the numbers of its `shutdown report:` line, and its log
 * entries (Effect's logfmt logger prints one entry per `timestamp=` line; a cause may span lines).
 */

/** The numbers of a `shutdown report:` line. */
export interface Report {
  readonly requestsDrained: number
  readonly requestsInterrupted: number
  readonly tasksFinished: number
  readonly tasksFailed: number
  readonly tasksInterrupted: number
  readonly tasksRejected: number
  readonly tasksSkipped: number
  readonly jobsStopped: number
  /** Daemon and schedule-run failures. */
  readonly jobFailures: number
  /** The names after `interrupted:`, if any. */
  readonly interruptedNames: ReadonlyArray<string>
  readonly stillRunning: ReadonlyArray<string>
}

export const parseReport = (line: string): Report => {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(line)
    if (match === null) throw new Error(`no ${pattern} in report: ${line}`)
    return Number(match[1])
  }
  const list = (label: string) => {
    const part = line.split("; ").find((segment) => segment.startsWith(`${label}: `))
    return part === undefined ? [] : part.slice(label.length + 2).split(", ")
  }
  return {
    requestsDrained: number(/requests drained=(\d+)/),
    requestsInterrupted: number(/requests drained=\d+ interrupted=(\d+)/),
    tasksFinished: number(/tasks finished=(\d+)/),
    tasksFailed: number(/ failed=(\d+)/),
    tasksInterrupted: number(/tasks finished=\d+ failed=\d+ interrupted=(\d+)/),
    tasksRejected: number(/ rejected=(\d+)/),
    tasksSkipped: number(/ skipped=(\d+)/),
    jobsStopped: number(/jobs stopped=(\d+)/),
    jobFailures: number(/jobs stopped=\d+ failures=(\d+)/),
    interruptedNames: list("interrupted"),
    stillRunning: list("still running")
  }
}

/** The log entries printed on stdout. */
export const logEntries = (stdout: string): ReadonlyArray<string> =>
  stdout.split(/\n(?=timestamp=)/).filter((entry) => entry.startsWith("timestamp="))

/** The ERROR entries annotated with `task=<name>`. */
export const errorsOfTask = (stdout: string, name: string): ReadonlyArray<string> =>
  logEntries(stdout).filter((entry) => entry.includes(" level=ERROR ") && new RegExp(` task=${name}$`, "m").test(entry))

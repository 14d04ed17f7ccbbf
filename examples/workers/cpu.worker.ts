/** The offload example's worker module: implements the tasks of ./cpu.tasks.ts. */
import { threadId } from "node:worker_threads"
import * as Offload from "../../src/Offload.js"
import { Crunch } from "./cpu.tasks.js"
import { crunch } from "./crunch.js"

export default Offload.worker(Offload.implement(Crunch, ({ n }) => ({ n, result: crunch(n), thread: threadId })))

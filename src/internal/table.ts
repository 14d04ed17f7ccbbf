/**
 * A table of values by whole-number id, for state that comes and goes with each request or task
 * (the supervisor's task records, a runner's calls, the server's connections and request fibers),
 * kept in fixed-size arrays of {@link CHUNK} slots, found by id, rather than in a `Map` or `Set`.
 *
 * Why not a `Map`: on V8 a long-lived `Map` or `Set` whose entries are added and deleted at a high
 * rate makes the young-generation collector promote every value it ever held to the old
 * generation, where only a full collection frees them. Measured on Node 20: 2 million
 * short-lived records passing through a `Map` five at a time promoted 3.2 MB per scavenge, against
 * 0.1 KB through a dictionary object; moving the supervisor's task records from a `Map` to a
 * dictionary object took a Fastify route adding one no-op task per request from 828 KB to 517 KB
 * promoted per scavenge. A dictionary object (V8's dictionary elements) cost
 * about 1 µs per set and delete in a CPU profile, though; slots in arrays cost an index.
 */
/**
 * Slots per array: a new array every {@link CHUNK} ids, dropped once its last value is (except
 * the one with the highest ids, where the next ids go: a table that often empties keeps it).
 */
const CHUNK = 1024

export class Table<V> {
  /** The arrays by `Math.floor(id / CHUNK)` (one Map entry per CHUNK ids, not one per value). */
  private readonly chunks = new Map<number, Chunk<V>>()
  private top = -1
  private count = 0

  get size(): number {
    return this.count
  }

  get(id: number): V | undefined {
    return this.chunks.get(Math.floor(id / CHUNK))?.slots[id % CHUNK]
  }

  has(id: number): boolean {
    return this.get(id) !== undefined
  }

  /** Keeps `value` under `id`, a whole number (replacing what was there). */
  set(id: number, value: V): void {
    const index = Math.floor(id / CHUNK)
    let chunk = this.chunks.get(index)
    if (chunk === undefined) {
      chunk = { slots: new Array<V | undefined>(CHUNK).fill(undefined), used: 0 }
      this.chunks.set(index, chunk)
      if (index > this.top) this.top = index
    }
    const slot = id % CHUNK
    if (chunk.slots[slot] === undefined) {
      chunk.used++
      this.count++
    }
    chunk.slots[slot] = value
  }

  delete(id: number): boolean {
    const index = Math.floor(id / CHUNK)
    const chunk = this.chunks.get(index)
    const slot = id % CHUNK
    if (chunk === undefined || chunk.slots[slot] === undefined) return false
    chunk.slots[slot] = undefined
    this.count--
    if (--chunk.used === 0 && index !== this.top) this.chunks.delete(index)
    return true
  }

  /** The ids and values, in ascending id order for ids handed out in sequence. */
  entries(): Array<[number, V]> {
    const entries: Array<[number, V]> = []
    this.each((id, value) => entries.push([id, value]))
    return entries
  }

  /** The values, in ascending id order for ids handed out in sequence. */
  values(): Array<V> {
    const values: Array<V> = []
    this.each((_id, value) => values.push(value))
    return values
  }

  private each(visit: (id: number, value: V) => void): void {
    for (const [index, chunk] of this.chunks) {
      chunk.slots.forEach((value, slot) => {
        if (value !== undefined) visit(index * CHUNK + slot, value)
      })
    }
  }
}

interface Chunk<V> {
  readonly slots: Array<V | undefined>
  used: number
}

/**
 * The id table (src/internal/table.ts) that holds per-task and per-request state: it answers as a
 * `Map` keyed by whole numbers would, for a random run of sets and deletes checked against one.
 */
import { describe, expect, it } from "vitest"
import { Table } from "../src/internal/table.js"

describe("Table", () => {
  it("keeps, finds, counts and forgets values by id, as a Map would", () => {
    const table = new Table<string>()
    const model = new Map<number, string>()
    let seed = 7
    const random = (limit: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % limit
    for (let step = 0; step < 5000; step++) {
      const id = random(200) * 1000 + (step % 3 === 0 ? 4_294_967_296 : 0) // ids past 2^32 included
      if (random(3) === 0) {
        expect(table.delete(id)).toBe(model.delete(id))
      } else {
        table.set(id, `value ${step}`)
        model.set(id, `value ${step}`)
      }
      expect(table.size).toBe(model.size)
      expect(table.get(id)).toBe(model.get(id))
      expect(table.has(id)).toBe(model.has(id))
    }
    const byId = (a: [number, string], b: [number, string]) => a[0] - b[0]
    expect(table.entries().sort(byId)).toEqual([...model.entries()].sort(byId))
    expect(table.values().sort()).toEqual([...model.values()].sort())
  })

  it("lists ids handed out in sequence in the order they were set", () => {
    const table = new Table<number>()
    for (let id = 0; id < 100; id++) table.set(id, id * 2)
    table.delete(50)
    expect(table.values()).toEqual(Array.from({ length: 100 }, (_, id) => id * 2).filter((value) => value !== 100))
  })

  it("keeps nothing of the values it let go of, across many arrays of slots", () => {
    const table = new Table<{ readonly id: number }>()
    for (let id = 0; id < 10_000; id++) {
      table.set(id, { id })
      if (id >= 3) table.delete(id - 3)
    }
    expect(table.size).toBe(3)
    expect(table.values().map((value) => value.id)).toEqual([9997, 9998, 9999])
    expect(table.get(5000)).toBeUndefined()
    for (const id of [9997, 9998, 9999]) table.delete(id)
    expect(table.size).toBe(0)
    expect(table.values()).toEqual([])
    table.set(10_000, { id: 10_000 })
    expect(table.entries()).toEqual([[10_000, { id: 10_000 }]])
  })
})

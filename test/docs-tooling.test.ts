/**
 * The conventions of the docs check (docs/contributing.md) as the parsers in scripts/api-docs.ts
 * read them: which fences are TypeScript, what `partial` means, where a block's lines are, and how
 * a doc comment splits into summary and tags.
 */
import { describe, expect, it } from "vitest"
import { fencesOf, isTypeScript, parseDocComment } from "../scripts/api-docs.js"

describe("fencesOf", () => {
  it("finds ts and typescript blocks with the line of their opening fence and the partial flag", () => {
    const lines = ["# Title", "```ts", "const a = 1", "```", "", "```typescript partial", "a.b", "```", "```sh", "ls", "```"]
    const fences = fencesOf(lines)
    expect(fences.map((fence) => [fence.lang, fence.flags, fence.line, isTypeScript(fence)])).toEqual([
      ["ts", [], 1, true],
      ["typescript", ["partial"], 5, true],
      ["sh", [], 8, false]
    ])
    expect(fences[0]!.code).toBe("const a = 1")
  })

  it("keeps a fence shown inside a longer fence as content", () => {
    const fences = fencesOf(["````markdown", "```ts", "broken(", "```", "````"])
    expect(fences).toHaveLength(1)
    expect(fences[0]!.lang).toBe("markdown")
  })

  it("strips the indentation of a fence nested in a list item from its code", () => {
    const fences = fencesOf(["- item", "  ```ts", "  const a = 1", "    .toString()", "  ```"])
    expect(fences[0]!.code).toBe("const a = 1\n  .toString()")
    expect(fences[0]!.indent).toBe(2)
  })
})

describe("parseDocComment", () => {
  const raw = [
    "/**",
    " * Starts a task.",
    " *",
    " * @example",
    " * ```ts",
    " * @decorator class A {}",
    " *   indented()",
    " * ```",
    " *",
    " * @since 0.1.0",
    " * @category forking",
    " */"
  ].join("\n")

  it("splits the summary from the block tags, ignoring @ inside code fences", () => {
    const doc = parseDocComment(raw)
    expect(doc.description).toBe("Starts a task.")
    expect(doc.tags.map((tag) => tag.name)).toEqual(["example", "since", "category"])
    expect(doc.tags[0]!.text).toBe("```ts\n@decorator class A {}\n  indented()\n```")
    expect(doc.tags[1]!.text).toBe("0.1.0")
  })

  it("keeps each line's position so errors can point into the source file", () => {
    const doc = parseDocComment(raw)
    const [fence] = fencesOf(doc.lines)
    // The fence opens on the comment's 5th line; its code starts 3 characters in (" * ").
    expect(fence!.line).toBe(4)
    expect(doc.margins[fence!.line + 1]).toBe(3)
  })
})

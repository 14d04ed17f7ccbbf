/**
 * The docs check (scripts/check-docs.ts, docs/contributing.md) — what it adds to TypeDoc, which
 * writes the reference: how it reads fences and doc comments, that a broken block is reported at
 * its line in the page or source file, that an export without @since or @example is reported, and
 * that a reference differing from TypeDoc's output is reported file by file.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import ts from "typescript"
import { afterEach, describe, expect, it } from "vitest"
import {
  compileSnippets,
  docCommentSnippets,
  exportProblems,
  fencesOf,
  isTypeScript,
  markdownSnippets,
  parseDocComment,
  publicModules,
  root,
  staleFiles
} from "../scripts/check-docs.js"

const temporary: Array<string> = []
const tempDir = (): string => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "docs-tooling-"))
  temporary.push(directory)
  return directory
}
afterEach(() => {
  for (const directory of temporary.splice(0)) fs.rmSync(directory, { recursive: true, force: true })
})

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

describe("compileSnippets", () => {
  it("reports a type error in a page's block, and a syntax error in a partial one, at their lines in the page", () => {
    const page = [
      "# A page", //                                1
      "", //                                        2
      "```ts", //                                   3
      "import { Effect } from \"effect\"", //        4
      "const n: number = Effect.succeed(1)", //     5
      "```", //                                     6
      "", //                                        7
      "```ts partial", //                           8
      "undefinedName.call((", //                    9
      "```", //                                     10
      "", //                                        11
      "```ts", //                                   12
      "export const fine: number = 1", //           13
      "```"
    ].join("\n")
    const { errors } = compileSnippets(markdownSnippets("docs/page.md", page))
    expect(errors).toHaveLength(2)
    expect(errors[0]).toMatch(/^docs\/page\.md:5:7 - error TS2322: /)
    expect(errors[0]).toContain("(in the block at docs/page.md:3;")
    // The partial block is only parsed: the unknown name is fine, the unclosed call is not.
    expect(errors[1]).toMatch(/^docs\/page\.md:9:\d+ - error TS1109: /)
    expect(errors[1]).toContain("(in the partial block at docs/page.md:8: it must still parse)")
  })

  it("reports a broken @example at its line in the source file, and a misspelt fence flag", () => {
    const source = [
      "/**", //                                         1
      " * Doubles.", //                                 2
      " *", //                                          3
      " * @example", //                                 4
      " * ```ts", //                                    5
      " * import { Background } from \"effect-background\"", // 6
      " * Background.nothingHere", //                   7
      " * ```", //                                      8
      " *", //                                          9
      " * ```ts parital", //                            10
      " * export {}", //                                11
      " * ```", //                                      12
      " */", //                                         13
      "export const double = (n: number) => n * 2"
    ].join("\n")
    const { errors } = compileSnippets(docCommentSnippets("src/Double.ts", source))
    expect(errors).toHaveLength(2)
    expect(errors[0]).toBe("src/Double.ts:10 - error: unknown fence flag(s) parital; the only one is `partial`")
    expect(errors[1]).toMatch(/^src\/Double\.ts:7:15 - error TS2339: Property 'nothingHere' does not exist/)
  })

  it("lets a page's blocks import each other by the file a block names, and no other page's", () => {
    const tasks = "```ts\n// tasks.ts\nexport const answer = 42\n```\n"
    const user = "```ts\nimport { answer } from \"./tasks.js\"\nexport const doubled: number = answer * 2\n```\n"
    const sameFile = compileSnippets(markdownSnippets("docs/one.md", tasks + user))
    expect(sameFile.errors).toEqual([])
    const otherFile = compileSnippets([...markdownSnippets("docs/one.md", tasks), ...markdownSnippets("docs/two.md", user)])
    expect(otherFile.errors).toHaveLength(1)
    expect(otherFile.errors[0]).toMatch(/^docs\/two\.md:2:\d+ - error TS2307: Cannot find module '\.\/tasks\.js'/)
  })
})

describe("exportProblems", () => {
  const programOf = (files: Record<string, string>) => {
    const directory = tempDir()
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(directory, name), text)
    const modules = Object.keys(files).map((name) => path.join(directory, name))
    return { modules, program: ts.createProgram(modules, { module: ts.ModuleKind.NodeNext, noEmit: true }) }
  }
  const documented = (tags: string) => `/**\n * A thing.\n *\n${tags}\n */\n`
  const example = " * @example\n * ```ts\n * export {}\n * ```"

  it("reports each export without a summary, @since, @category or an @example with a ts block, at its declaration", () => {
    const lines = [
      documented(" * @since 0.1.0\n * @module"),
      "import type {} from \"node:fs\"",
      documented(`${example}\n * @since 0.1.0\n * @category things`),
      "export const complete = 1",
      documented(" * @since 0.1.0\n * @category things\n * @example\n * ```sh\n * ls\n * ```"),
      "export interface ShellOnly {}",
      "export type Undocumented = string",
      `/**\n${example}\n * @since 0.1.0\n * @category things\n */`,
      "export const tagsOnly = 3",
      documented(" * @internal"),
      "export const hidden = 2"
    ].join("\n").split("\n")
    const lineOf = (start: string) => lines.findIndex((line) => line.startsWith(start)) + 1
    const { modules, program } = programOf({ "M.ts": lines.join("\n") })
    const problems = exportProblems(program, modules).map((problem) => problem.replace(/^.*\//, ""))
    expect(problems).toEqual([
      `M.ts:${lineOf("export interface ShellOnly")}: ShellOnly lacks an @example with a \`\`\`ts block`,
      `M.ts:${lineOf("export type Undocumented")}: Undocumented lacks a summary, @since, @category, an @example with a \`\`\`ts block`,
      `M.ts:${lineOf("export const tagsOnly")}: tagsOnly lacks a summary`
    ])
  })

  it("reads a re-export's doc at its declaration, where TypeDoc reads it, and wants a module comment with @since", () => {
    const inner = [
      documented(`${example}\n * @since 0.1.0\n * @category things`),
      "export interface Thing {}",
      "export interface Bare {}"
    ].join("\n")
    const outer = [
      "export type {",
      documented(`${example}\n * @since 0.1.0\n * @category things`),
      "  Bare,",
      "  Thing",
      "} from \"./Inner.js\""
    ].join("\n")
    const { modules, program } = programOf({ "Inner.ts": inner, "Outer.ts": outer })
    const problems = exportProblems(program, modules.filter((file) => file.endsWith("Outer.ts")))
    expect(problems.map((problem) => problem.replace(/^.*\//, ""))).toEqual([
      "Outer.ts:1: the module has no doc comment with @since",
      `Inner.ts:${inner.split("\n").indexOf("export interface Bare {}") + 1}: Bare lacks a summary, @since, @category, an @example with a \`\`\`ts block`
    ])
  })

  it("finds nothing missing in the public modules", () => {
    const modules = publicModules()
    expect(modules.map((file) => path.relative(root, file))).toContain(path.join("src", "index.ts"))
    const program = ts.createProgram(modules, { module: ts.ModuleKind.NodeNext, noEmit: true, skipLibCheck: true })
    expect(exportProblems(program, modules)).toEqual([])
  })
})

describe("staleFiles", () => {
  it("names each page that is missing, differs from TypeDoc's output, or is no longer generated", () => {
    const generated = tempDir()
    const committed = tempDir()
    const write = (directory: string, name: string, text: string) => fs.writeFileSync(path.join(directory, name), text)
    write(generated, "README.md", "# index\n")
    write(committed, "README.md", "# index\n")
    expect(staleFiles(generated, committed)).toEqual([])

    write(generated, "Background.md", "# Background\n")
    write(generated, "Server.md", "# Server, new\n")
    write(committed, "Server.md", "# Server, old\n")
    write(committed, "Old.md", "# gone\n")
    const shown = (name: string) => path.relative(root, path.join(committed, name)).split(path.sep).join("/")
    expect(staleFiles(generated, committed)).toEqual([
      `${shown("Background.md")} is missing`,
      `${shown("Server.md")} is out of date`,
      `${shown("Old.md")} is not generated any more`
    ])
  })
})

/**
 * Type-checks the TypeScript in the docs, so none of it can rot: every ```ts / ```typescript block
 * of README.md and docs/**\/*.md (docs/api/ aside: it is generated from the TSDoc), and every such
 * block in the doc comments (`@example`) of the public modules, src/*.ts. Then checks that
 * docs/api/ is what scripts/api-docs.ts would generate.
 *
 * Conventions (docs/contributing.md):
 * - Each block compiles as its own module, with the project's tsconfig.json options (unused
 *   locals and parameters allowed). `"effect-background"` and `"effect-background/<Module>"`
 *   resolve to src/ through the tsconfig paths.
 * - A block that is deliberately incomplete is fenced ```ts partial: it is parsed and must be
 *   free of syntax errors, but it is not type-checked.
 * - A block whose first line is a comment naming a file, `// cpu.tasks.ts`, can be imported by
 *   the other blocks of the same page as `./cpu.tasks.js`.
 *
 * All blocks go into one in-memory program (nothing is written to disk), so the check costs one
 * compilation of src/ plus the snippets. Errors name the file and line of the code in the page or
 * the source file.
 *
 *   npx tsx scripts/check-docs.ts   (`npm run check:docs`, part of `npm test`)
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"
import {
  apiDir,
  fencesOf,
  generateApiDocs,
  indexFile,
  isTypeScript,
  parseDocComment,
  projectOptions,
  root,
  staleApiDocs
} from "./api-docs.js"

/** A TypeScript block found in a page or a doc comment. */
interface Snippet {
  /** The page or source file, relative to the repository root. */
  readonly source: string
  /** The 1-based line of the opening fence. */
  readonly line: number
  readonly code: string
  readonly partial: boolean
  /** Flags of the fence's info string that mean nothing here (likely typos). */
  readonly unknownFlags: ReadonlyArray<string>
  /** For each line of `code`, its 1-based line in `source` and how far right its text starts. */
  readonly lines: ReadonlyArray<{ readonly line: number; readonly column: number }>
  /** Where the block lives in the in-memory program. */
  virtualPath: string
}

const knownFlags = new Set(["partial"])

const posix = (file: string): string => file.split(path.sep).join("/")

const markdownFiles = (): ReadonlyArray<string> => {
  const found: Array<string> = []
  const walk = (directory: string) => {
    if (!fs.existsSync(directory)) return
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      const file = path.join(directory, entry.name)
      if (entry.isDirectory()) {
        if (path.resolve(file) !== path.resolve(apiDir)) walk(file)
      } else if (entry.name.endsWith(".md")) found.push(file)
    }
  }
  walk(path.join(root, "docs"))
  return [path.join(root, "README.md"), ...found.sort()]
}

/** The public modules: src/*.ts (src/internal/ is not public). */
const publicModules = (): ReadonlyArray<string> =>
  fs.readdirSync(path.join(root, "src"))
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .sort()
    .map((name) => path.join(root, "src", name))

const snippet = (
  source: string,
  fence: ReturnType<typeof fencesOf>[number],
  position: (codeLine: number) => { readonly line: number; readonly column: number },
  fenceLine: number
): Snippet => ({
  source,
  line: fenceLine,
  code: fence.code,
  partial: fence.flags.includes("partial"),
  unknownFlags: fence.flags.filter((flag) => !knownFlags.has(flag)),
  lines: fence.code.split("\n").map((_, index) => position(index)),
  virtualPath: ""
})

const markdownSnippets = (file: string): ReadonlyArray<Snippet> => {
  const lines = fs.readFileSync(file, "utf8").split("\n")
  return fencesOf(lines).filter(isTypeScript).map((fence) =>
    snippet(
      posix(path.relative(root, file)),
      fence,
      (index) => ({ line: fence.line + index + 2, column: fence.indent }),
      fence.line + 1
    )
  )
}

const docCommentSnippets = (file: string): ReadonlyArray<Snippet> => {
  const text = fs.readFileSync(file, "utf8")
  const snippets: Array<Snippet> = []
  for (const match of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const firstLine = text.slice(0, match.index).split("\n").length // 1-based line of `/**`
    const doc = parseDocComment(match[0])
    for (const fence of fencesOf(doc.lines).filter(isTypeScript)) {
      snippets.push(snippet(
        posix(path.relative(root, file)),
        fence,
        (index) => {
          const commentLine = fence.line + 1 + index
          return { line: firstLine + commentLine, column: (doc.margins[commentLine] ?? 0) + fence.indent }
        },
        firstLine + fence.line
      ))
    }
  }
  return snippets
}

/**
 * Gives each snippet a path in a virtual directory per page, `<root>/.docs-check/<page>/`, so that
 * relative imports between the blocks of one page resolve and pages never see each other's files.
 */
const place = (snippets: ReadonlyArray<Snippet>): void => {
  const taken = new Set<string>()
  for (const item of snippets) {
    const directory = path.posix.join(posix(root), ".docs-check", item.source)
    const named = /^\s*\/\/\s*([\w.-]+\.(?:ts|mts|tsx))\b/.exec(item.code)?.[1]
    const preferred = named === undefined ? undefined : path.posix.join(directory, named)
    item.virtualPath = preferred !== undefined && !taken.has(preferred)
      ? preferred
      : path.posix.join(directory, `L${item.line}.ts`)
    taken.add(item.virtualPath)
  }
}

const createProgram = (snippets: ReadonlyArray<Snippet>): ts.Program => {
  const options: ts.CompilerOptions = {
    ...projectOptions(),
    noEmit: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    // A block without imports is still a module of its own, not a script sharing globals.
    moduleDetection: ts.ModuleDetectionKind.Force
  }
  const files = new Map(snippets.map((item) => [item.virtualPath, item.code]))
  const directories = new Set([...files.keys()].flatMap((file) => {
    const parents: Array<string> = []
    for (let directory = path.posix.dirname(file); directory.length > posix(root).length; directory = path.posix.dirname(directory)) {
      parents.push(directory)
    }
    return parents
  }))
  const host = ts.createCompilerHost(options, true)
  const { directoryExists, fileExists, getSourceFile, readFile, realpath } = host
  host.fileExists = (file) => files.has(file) || fileExists.call(host, file)
  host.readFile = (file) => files.get(file) ?? readFile.call(host, file)
  host.directoryExists = (directory) => directories.has(directory) || (directoryExists?.call(host, directory) ?? true)
  host.realpath = (file) => files.has(file) || directories.has(file) ? file : realpath?.call(host, file) ?? file
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) => {
    const code = files.get(file)
    return code === undefined
      ? getSourceFile.call(host, file, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(file, code, languageVersion, true)
  }
  return ts.createProgram({ rootNames: [indexFile, ...files.keys()], options, host })
}

const formatDiagnostic = (diagnostic: ts.Diagnostic, byPath: ReadonlyMap<string, Snippet>): string => {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n  ")
  const code = `TS${diagnostic.code}`
  const file = diagnostic.file
  if (file === undefined || diagnostic.start === undefined) return `error ${code}: ${message}`
  const position = file.getLineAndCharacterOfPosition(diagnostic.start)
  const item = byPath.get(file.fileName)
  if (item === undefined) {
    return `${posix(path.relative(root, file.fileName))}:${position.line + 1}:${position.character + 1} - error ${code}: ${message}`
  }
  const at = item.lines[position.line] ?? { line: item.line, column: 0 }
  const text = item.code.split("\n")[position.line] ?? ""
  return [
    `${item.source}:${at.line}:${at.column + position.character + 1} - error ${code}: ${message}`,
    `    ${text.trim()}`,
    item.partial
      ? `  (in the partial block at ${item.source}:${item.line}: it must still parse)`
      : `  (in the block at ${item.source}:${item.line}; fence a deliberately incomplete block \`\`\`ts partial)`
  ].join("\n")
}

const main = (): void => {
  const started = Date.now()
  const snippets = [
    ...markdownFiles().flatMap(markdownSnippets),
    ...publicModules().flatMap(docCommentSnippets)
  ]
  place(snippets)
  const byPath = new Map(snippets.map((item) => [item.virtualPath, item]))
  const program = createProgram(snippets)
  const errors: Array<string> = []
  for (const item of snippets) {
    if (item.unknownFlags.length > 0) {
      errors.push(`${item.source}:${item.line} - error: unknown fence flag(s) ${item.unknownFlags.join(", ")}; the only one is \`partial\``)
    }
  }
  const diagnostics: Array<ts.Diagnostic> = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]
  for (const item of snippets) {
    const file = program.getSourceFile(item.virtualPath)
    if (file === undefined) {
      errors.push(`${item.source}:${item.line} - error: the block was not compiled`)
      continue
    }
    diagnostics.push(...program.getSyntacticDiagnostics(file))
    if (!item.partial) diagnostics.push(...program.getSemanticDiagnostics(file))
  }
  errors.push(...diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => formatDiagnostic(d, byPath)))

  const { files, problems } = generateApiDocs(program)
  errors.push(...problems.map((problem) => `${problem} (every public export needs a summary, @since, @category and an @example)`))
  const stale = staleApiDocs(files)
  if (stale.length > 0) errors.push(`${stale.join("; ")}: run \`npm run docs:api\` to regenerate the API reference`)

  const partial = snippets.filter((item) => item.partial).length
  const sources = new Set(snippets.map((item) => item.source)).size
  const summary = `check-docs: ${snippets.length} TypeScript blocks in ${sources} files (${partial} partial, syntax only), ` +
    `API reference ${stale.length === 0 ? "up to date" : "out of date"}, in ${((Date.now() - started) / 1000).toFixed(1)} s`
  if (errors.length > 0) {
    console.error(errors.join("\n\n"))
    console.error(`\n${summary}: ${errors.length} error(s)`)
    process.exitCode = 1
  } else console.log(summary)
}

main()

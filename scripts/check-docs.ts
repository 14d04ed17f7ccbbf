/**
 * Checks what TypeDoc, which writes the API reference (typedoc.json, `npm run docs:api`), does not:
 *
 * - Every ```ts / ```typescript block type-checks: in README.md and docs/**\/*.md (docs/api/ aside:
 *   it is generated), and in the doc comments of src/ — the `@example`s of the public modules,
 *   wherever their exports are declared. TypeDoc copies examples into the reference as text.
 * - Every public export has a summary, `@since`, `@category` and an `@example` with a ```ts block.
 *   TypeDoc requires a doc comment (its `notDocumented` validation), but none of these.
 * - docs/api/ is what TypeDoc writes now: it is generated into a temporary directory (which also
 *   runs TypeDoc's validation: broken `{@link}`s, undocumented exports) and compared.
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
 * All blocks go into one in-memory program with the public modules (nothing is written to disk),
 * so the check costs one compilation of src/ plus the snippets, while TypeDoc runs beside it in a
 * child process. Errors name the file and line of the code in the page or the source file.
 *
 *   npx tsx scripts/check-docs.ts   (`npm run check:docs`, part of `npm test`)
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const apiDir = path.join(root, "docs", "api")

const posix = (file: string): string => file.split(path.sep).join("/")
const relative = (file: string): string => posix(path.relative(root, file))

// ---------------------------------------------------------------------------------------------
// Doc comments and fenced code
// ---------------------------------------------------------------------------------------------

/** A block tag of a doc comment; `line` is the 0-based line of the tag within the comment. */
export interface DocTag {
  readonly name: string
  readonly text: string
  readonly line: number
}

export interface DocComment {
  readonly description: string
  readonly tags: ReadonlyArray<DocTag>
  /** The comment's lines without their `/**`, ` * ` and `*\/` decoration. */
  readonly lines: ReadonlyArray<string>
  /** For each line, how many characters of decoration were removed from its start. */
  readonly margins: ReadonlyArray<number>
}

const fenceOpen = /^(\s*)(`{3,}|~{3,})\s*([^`]*?)\s*$/

/**
 * Reads a `/** … *\/` comment. A line starting with `@name` starts a block tag unless it is inside
 * a code fence, so examples may contain decorators or `@` freely.
 */
export const parseDocComment = (raw: string): DocComment => {
  const lines: Array<string> = []
  const margins: Array<number> = []
  raw.split("\n").forEach((line, index, all) => {
    let text = line.replace(/\r$/, "")
    let margin = 0
    if (index === 0) {
      const start = text.indexOf("/**")
      margin = start + 3
      text = text.slice(margin)
    }
    if (index === all.length - 1) text = text.replace(/\s*\*\/\s*$/, "")
    if (index > 0) {
      const decoration = /^\s*\* ?/.exec(text)
      if (decoration !== null) {
        margin = decoration[0].length
        text = text.slice(margin)
      }
    } else if (text.startsWith(" ")) {
      margin += 1
      text = text.slice(1)
    }
    lines.push(text)
    margins.push(margin)
  })
  const description: Array<string> = []
  const tags: Array<{ name: string; text: Array<string>; line: number }> = []
  let fence: string | undefined
  lines.forEach((line, index) => {
    const open = fenceOpen.exec(line)
    if (fence === undefined && open !== null) fence = open[2]
    else if (fence !== undefined && line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, "") === "") {
      fence = undefined
    } else if (fence === undefined) {
      const tag = /^\s*@(\w+)\s?(.*)$/.exec(line)
      if (tag !== null) {
        tags.push({ name: tag[1]!, text: tag[2] === "" ? [] : [tag[2]!], line: index })
        return
      }
    }
    const current = tags[tags.length - 1]
    if (current === undefined) description.push(line)
    else current.text.push(line)
  })
  return {
    description: trimBlankLines(description).join("\n"),
    tags: tags.map((tag) => ({ name: tag.name, text: trimBlankLines(tag.text).join("\n"), line: tag.line })),
    lines,
    margins
  }
}

const trimBlankLines = (lines: ReadonlyArray<string>): ReadonlyArray<string> => {
  let start = 0
  let end = lines.length
  while (start < end && lines[start]!.trim() === "") start++
  while (end > start && lines[end - 1]!.trim() === "") end--
  return lines.slice(start, end)
}

/** A fenced code block; `line` is the 0-based index of its opening fence in the lines given. */
export interface Fence {
  readonly lang: string
  /** The words of the info string after the language, e.g. `["partial"]`. */
  readonly flags: ReadonlyArray<string>
  readonly code: string
  readonly line: number
  /** How many characters of indentation were removed from each code line. */
  readonly indent: number
}

/** The fenced code blocks of markdown text, with the line of each opening fence. */
export const fencesOf = (lines: ReadonlyArray<string>): ReadonlyArray<Fence> => {
  const fences: Array<Fence> = []
  for (let index = 0; index < lines.length; index++) {
    const open = fenceOpen.exec(lines[index]!)
    if (open === null) continue
    const indent = open[1]!.length
    const marker = open[2]!
    const [lang = "", ...flags] = open[3]!.split(/\s+/).filter((word) => word !== "")
    const code: Array<string> = []
    let end = index + 1
    while (end < lines.length) {
      const line = lines[end]!
      const trimmed = line.trim()
      if (trimmed.startsWith(marker[0]!.repeat(marker.length)) && /^[`~]+$/.test(trimmed)) break
      code.push(line.slice(Math.min(indent, line.length - line.trimStart().length)))
      end++
    }
    fences.push({ lang: lang.toLowerCase(), flags, code: code.join("\n"), line: index, indent })
    index = end
  }
  return fences
}

/** Whether a fence holds TypeScript that the docs check compiles. */
export const isTypeScript = (fence: Fence): boolean => fence.lang === "ts" || fence.lang === "typescript"

// ---------------------------------------------------------------------------------------------
// The TypeScript blocks
// ---------------------------------------------------------------------------------------------

/** A TypeScript block found in a page or a doc comment. */
export interface Snippet {
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
}

const knownFlags = new Set(["partial"])

const snippet = (
  source: string,
  fence: Fence,
  position: (codeLine: number) => { readonly line: number; readonly column: number },
  fenceLine: number
): Snippet => ({
  source,
  line: fenceLine,
  code: fence.code,
  partial: fence.flags.includes("partial"),
  unknownFlags: fence.flags.filter((flag) => !knownFlags.has(flag)),
  lines: fence.code.split("\n").map((_, index) => position(index))
})

/** The TypeScript blocks of a markdown page; `source` is its path from the repository root. */
export const markdownSnippets = (source: string, text: string): ReadonlyArray<Snippet> =>
  fencesOf(text.split("\n")).filter(isTypeScript).map((fence) =>
    snippet(source, fence, (index) => ({ line: fence.line + index + 2, column: fence.indent }), fence.line + 1)
  )

/** The TypeScript blocks in the doc comments of a source file. */
export const docCommentSnippets = (source: string, text: string): ReadonlyArray<Snippet> => {
  const snippets: Array<Snippet> = []
  for (const match of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const firstLine = text.slice(0, match.index).split("\n").length // 1-based line of `/**`
    const doc = parseDocComment(match[0])
    for (const fence of fencesOf(doc.lines).filter(isTypeScript)) {
      snippets.push(snippet(
        source,
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
const place = (snippets: ReadonlyArray<Snippet>): Map<string, Snippet> => {
  const placed = new Map<string, Snippet>()
  for (const item of snippets) {
    const directory = path.posix.join(posix(root), ".docs-check", item.source)
    const named = /^\s*\/\/\s*([\w.-]+\.(?:ts|mts|tsx))\b/.exec(item.code)?.[1]
    const preferred = named === undefined ? undefined : path.posix.join(directory, named)
    placed.set(
      preferred !== undefined && !placed.has(preferred) ? preferred : path.posix.join(directory, `L${item.line}.ts`),
      item
    )
  }
  return placed
}

/** The compiler options of the project's `tsconfig.json`. */
const projectOptions = (): ts.CompilerOptions => {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error("tsconfig.json could not be read")
  return parsed.options
}

/** One program with the given files and the snippets, which exist only in memory. */
const createProgram = (rootFiles: ReadonlyArray<string>, placed: ReadonlyMap<string, Snippet>): ts.Program => {
  const options: ts.CompilerOptions = {
    ...projectOptions(),
    noEmit: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    // A block without imports is still a module of its own, not a script sharing globals.
    moduleDetection: ts.ModuleDetectionKind.Force
  }
  const directories = new Set([...placed.keys()].flatMap((file) => {
    const parents: Array<string> = []
    for (let directory = path.posix.dirname(file); directory.length > posix(root).length; directory = path.posix.dirname(directory)) {
      parents.push(directory)
    }
    return parents
  }))
  const host = ts.createCompilerHost(options, true)
  const { directoryExists, fileExists, getSourceFile, readFile, realpath } = host
  host.fileExists = (file) => placed.has(file) || fileExists.call(host, file)
  host.readFile = (file) => placed.get(file)?.code ?? readFile.call(host, file)
  host.directoryExists = (directory) => directories.has(directory) || (directoryExists?.call(host, directory) ?? true)
  host.realpath = (file) => placed.has(file) || directories.has(file) ? file : realpath?.call(host, file) ?? file
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) => {
    const item = placed.get(file)
    return item === undefined
      ? getSourceFile.call(host, file, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(file, item.code, languageVersion, true)
  }
  return ts.createProgram({ rootNames: [...rootFiles, ...placed.keys()], options, host })
}

const formatDiagnostic = (diagnostic: ts.Diagnostic, placed: ReadonlyMap<string, Snippet>): string => {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n  ")
  const code = `TS${diagnostic.code}`
  const file = diagnostic.file
  if (file === undefined || diagnostic.start === undefined) return `error ${code}: ${message}`
  const position = file.getLineAndCharacterOfPosition(diagnostic.start)
  const item = placed.get(file.fileName)
  if (item === undefined) {
    return `${relative(file.fileName)}:${position.line + 1}:${position.character + 1} - error ${code}: ${message}`
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

/**
 * Compiles the snippets in one program with `rootFiles`; returns the program and an error for
 * each problem in a snippet (a `partial` one is only parsed).
 */
export const compileSnippets = (
  snippets: ReadonlyArray<Snippet>,
  rootFiles: ReadonlyArray<string> = []
): { readonly program: ts.Program; readonly errors: ReadonlyArray<string> } => {
  const placed = place(snippets)
  const program = createProgram(rootFiles, placed)
  const errors: Array<string> = []
  for (const item of snippets) {
    if (item.unknownFlags.length > 0) {
      errors.push(`${item.source}:${item.line} - error: unknown fence flag(s) ${item.unknownFlags.join(", ")}; the only one is \`partial\``)
    }
  }
  const diagnostics: Array<ts.Diagnostic> = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]
  for (const [virtualPath, item] of placed) {
    const file = program.getSourceFile(virtualPath)
    if (file === undefined) {
      errors.push(`${item.source}:${item.line} - error: the block was not compiled`)
      continue
    }
    diagnostics.push(...program.getSyntacticDiagnostics(file))
    if (!item.partial) diagnostics.push(...program.getSemanticDiagnostics(file))
  }
  errors.push(...diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => formatDiagnostic(d, placed)))
  return { program, errors }
}

// ---------------------------------------------------------------------------------------------
// The tags TypeDoc does not require
// ---------------------------------------------------------------------------------------------

/** The doc comment closest to a declaration (for a variable, the one on its statement). */
const docOf = (node: ts.Node): DocComment | undefined => {
  const jsDocs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc)
  const last = jsDocs[jsDocs.length - 1]
  return last === undefined ? undefined : parseDocComment(last.getText())
}

/**
 * A file's own doc comment: its first, when another follows before the first statement or that
 * statement is an import or export declaration (which a comment cannot document).
 */
const moduleDocOf = (file: ts.SourceFile): DocComment | undefined => {
  const first = file.statements[0]
  if (first === undefined) return undefined
  const comments = (ts.getLeadingCommentRanges(file.text, first.getFullStart()) ?? [])
    .filter((range) => file.text.startsWith("/**", range.pos))
  const head = comments[0]
  if (head === undefined || (comments.length < 2 && !ts.isImportDeclaration(first) && !ts.isExportDeclaration(first))) {
    return undefined
  }
  return parseDocComment(file.text.slice(head.pos, head.end))
}

/**
 * What the public exports of `modules` lack: each needs a summary, `@since`, `@category` and an
 * `@example` with a ```ts block, read from its declaration (where TypeDoc reads it, even in
 * src/internal/), and each module a first doc comment with `@since`. `@internal` exports are left
 * out, as TypeDoc leaves them out. A re-exported module is checked as a module of its own.
 */
export const exportProblems = (program: ts.Program, modules: ReadonlyArray<string>): ReadonlyArray<string> => {
  const checker = program.getTypeChecker()
  const problems: Array<string> = []
  const seen = new Set<ts.Node>()
  for (const module of modules) {
    const file = program.getSourceFile(module)
    const symbol = file === undefined ? undefined : checker.getSymbolAtLocation(file)
    if (file === undefined || symbol === undefined) {
      problems.push(`${relative(module)}: not a module of the program`)
      continue
    }
    if (moduleDocOf(file)?.tags.some((tag) => tag.name === "since" && tag.text !== "") !== true) {
      problems.push(`${relative(module)}:1: the module has no doc comment with @since`)
    }
    for (const exported of checker.getExportsOfModule(symbol)) {
      const target = (exported.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(exported) : exported
      for (const declaration of target.declarations ?? []) {
        if (ts.isSourceFile(declaration) || seen.has(declaration)) continue
        seen.add(declaration)
        const doc = docOf(declaration)
        if (doc?.tags.some((tag) => tag.name === "internal")) continue
        const where = `${relative(declaration.getSourceFile().fileName)}:${
          declaration.getSourceFile().getLineAndCharacterOfPosition(declaration.getStart()).line + 1
        }`
        const has = (name: string) => doc?.tags.some((tag) => tag.name === name && tag.text !== "") === true
        const missing = [
          doc !== undefined && doc.description !== "" ? [] : ["a summary"],
          has("since") ? [] : ["@since"],
          has("category") ? [] : ["@category"],
          doc?.tags.some((tag) => tag.name === "example" && fencesOf(tag.text.split("\n")).some(isTypeScript)) === true
            ? []
            : ["an @example with a ```ts block"]
        ].flat()
        if (missing.length > 0) problems.push(`${where}: ${exported.name} lacks ${missing.join(", ")}`)
      }
    }
  }
  return problems
}

// ---------------------------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------------------------

/** The public modules: TypeDoc's entry points in typedoc.json. */
export const publicModules = (): ReadonlyArray<string> => {
  const { config, error } = ts.readConfigFile(path.join(root, "typedoc.json"), ts.sys.readFile)
  if (error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, "\n"))
  return (config as { entryPoints: ReadonlyArray<string> }).entryPoints.map((file) => path.join(root, file))
}

/**
 * Runs TypeDoc with typedoc.json, writing the reference into `out`. Resolves to TypeDoc's output
 * when it fails (a validation warning fails it: typedoc.json treats warnings as errors).
 */
const generateReference = (out: string): Promise<string | undefined> => {
  const bin = path.join(path.dirname(createRequire(import.meta.url).resolve("typedoc/package.json")), "bin", "typedoc")
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "--out", out, "--logLevel", "Warn"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => output += chunk)
    child.stderr.on("data", (chunk) => output += chunk)
    child.on("error", reject)
    child.on("close", (code) => resolve(code === 0 ? undefined : output.trim() || `TypeDoc exited with ${code}`))
  })
}

/** The files under `directory`, recursively, as paths relative to it. */
const filesUnder = (directory: string): ReadonlyArray<string> => {
  const found: Array<string> = []
  const walk = (relativeDirectory: string) => {
    for (const entry of fs.readdirSync(path.join(directory, relativeDirectory), { withFileTypes: true })) {
      const name = path.posix.join(relativeDirectory, entry.name)
      if (entry.isDirectory()) walk(name)
      else if (entry.isFile()) found.push(name)
    }
  }
  if (fs.existsSync(directory)) walk("")
  return found.sort()
}

/** How `committed` (docs/api/) differs from a freshly `generated` reference, one line per file. */
export const staleFiles = (generated: string, committed: string = apiDir): ReadonlyArray<string> => {
  const shown = (name: string) => relative(path.join(committed, name))
  const fresh = new Set(filesUnder(generated))
  const stale: Array<string> = []
  for (const name of fresh) {
    const file = path.join(committed, name)
    if (!fs.existsSync(file)) stale.push(`${shown(name)} is missing`)
    else if (!fs.readFileSync(file).equals(fs.readFileSync(path.join(generated, name)))) stale.push(`${shown(name)} is out of date`)
  }
  for (const name of filesUnder(committed)) if (!fresh.has(name)) stale.push(`${shown(name)} is not generated any more`)
  return stale
}

// ---------------------------------------------------------------------------------------------

/** README.md and docs/**\/*.md, without the generated docs/api/. */
const markdownFiles = (): ReadonlyArray<string> => [
  path.join(root, "README.md"),
  ...filesUnder(path.join(root, "docs"))
    .filter((name) => name.endsWith(".md") && !name.startsWith("api/"))
    .map((name) => path.join(root, "docs", name))
]

/** Every source file under src/: a public export's doc comment may be in src/internal/. */
const sourceFiles = (): ReadonlyArray<string> =>
  filesUnder(path.join(root, "src"))
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .map((name) => path.join(root, "src", name))

const main = async (): Promise<void> => {
  const started = Date.now()
  // TypeDoc compiles the sources on its own: it runs in a child process while this one compiles.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "docs-api-"))
  const typedoc = generateReference(out)

  const snippets = [
    ...markdownFiles().flatMap((file) => markdownSnippets(relative(file), fs.readFileSync(file, "utf8"))),
    ...sourceFiles().flatMap((file) => docCommentSnippets(relative(file), fs.readFileSync(file, "utf8")))
  ]
  const modules = publicModules()
  const { errors: snippetErrors, program } = compileSnippets(snippets, modules)
  const errors = [...snippetErrors]
  const problems = exportProblems(program, modules)
  if (problems.length > 0) {
    errors.push(`${problems.join("\n")}\n(docs/contributing.md: every public export needs a summary, @since, @category and an @example)`)
  }

  const failure = await typedoc
  const stale = failure === undefined ? staleFiles(out) : []
  fs.rmSync(out, { recursive: true, force: true })
  if (failure !== undefined) errors.push(`TypeDoc failed (run \`npm run docs:api\` to see it alone):\n${failure}`)
  if (stale.length > 0) {
    errors.push(`${stale.join("\n")}\nThe API reference is out of date: run \`npm run docs:api\` and commit docs/api/.`)
  }

  const partial = snippets.filter((item) => item.partial).length
  const sources = new Set(snippets.map((item) => item.source)).size
  const reference = failure !== undefined ? "not generated" : stale.length === 0 ? "up to date" : "out of date"
  const summary = `check-docs: ${snippets.length} TypeScript blocks in ${sources} files (${partial} partial, syntax only), ` +
    `API reference ${reference}, in ${((Date.now() - started) / 1000).toFixed(1)} s`
  if (errors.length > 0) {
    console.error(errors.join("\n\n"))
    console.error(`\n${summary}: ${errors.length} error(s)`)
    process.exitCode = 1
  } else console.log(summary)
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}

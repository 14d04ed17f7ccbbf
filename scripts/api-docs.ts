/**
 * Generates the API reference under `docs/api/` from the TSDoc of every public export: one page
 * per module re-exported by `src/index.ts`, plus `docs/api/README.md` as the index. Each entry
 * shows the export's name, kind, signature (printed by the type checker), summary, `@since`,
 * `@category` (entries are grouped by it) and `@example`. An export without a summary, `@since`,
 * `@category` or `@example` is an error; `@internal` exports are left out.
 *
 *   npx tsx scripts/api-docs.ts           write docs/api/ (`npm run docs:api`)
 *   npx tsx scripts/api-docs.ts --check   fail when docs/api/ is not what it would write
 *
 * `scripts/check-docs.ts` runs the same check on the program it builds for the snippets, so
 * `npm test` compiles the sources once.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const apiDir = path.join(root, "docs", "api")
export const indexFile = path.join(root, "src", "index.ts")
const packageName = "effect-background"

/** The compiler options of the project's `tsconfig.json`. */
export const projectOptions = (): ts.CompilerOptions => {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error("tsconfig.json could not be read")
  return parsed.options
}

// ---------------------------------------------------------------------------------------------
// Doc comments and fenced code, shared with scripts/check-docs.ts
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
// The reference
// ---------------------------------------------------------------------------------------------

interface Entry {
  readonly name: string
  readonly kind: string
  readonly signature: string
  readonly description: string
  readonly since: string
  readonly category: string
  readonly examples: ReadonlyArray<string>
}

interface Page {
  /** The module's name, as exported from the package root (`Background`) or its file's name. */
  readonly name: string
  readonly file: string
  /** How the package root exposes it: as a namespace, or each export directly. */
  readonly exposure: "namespace" | "flat"
  readonly description: string
  readonly since: string | undefined
  readonly entries: ReadonlyArray<Entry>
}

const relative = (file: string): string => path.relative(root, file).split(path.sep).join("/")

const lineOf = (node: ts.Node): number =>
  node.getSourceFile().getLineAndCharacterOfPosition(node.getStart()).line + 1

const tagText = (doc: DocComment, name: string): string | undefined => doc.tags.find((tag) => tag.name === name)?.text

/** The doc comment closest to a declaration (for a variable, the one on its statement). */
const docOf = (node: ts.Node): DocComment | undefined => {
  // `export * as X from "./X.js"`: the comment belongs to the whole statement.
  const commented = ts.isNamespaceExport(node) ? node.parent : node
  const jsDocs = ts.getJSDocCommentsAndTags(commented).filter(ts.isJSDoc)
  const last = jsDocs[jsDocs.length - 1]
  return last === undefined ? undefined : parseDocComment(last.getText())
}

/** A file's own doc comment: the first one, when it comes before an import or another comment. */
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

const isInternal = (node: ts.Node): boolean => docOf(node)?.tags.some((tag) => tag.name === "internal") ?? false

const builderFlags = ts.NodeBuilderFlags.NoTruncation |
  ts.NodeBuilderFlags.MultilineObjectLiterals |
  ts.NodeBuilderFlags.WriteTypeArgumentsOfSignature |
  ts.NodeBuilderFlags.IgnoreErrors

const printer = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed, omitTrailingSemicolon: true })

/** Declarations print with 4-space indentation; the reference uses 2 like the sources. */
const reindent = (text: string): string => text.replace(/^((?: {4})+)/gm, (spaces) => " ".repeat(spaces.length / 2))

const maxWidth = 100

/** The bracket groups at the top level of a line, with the commas directly inside each. */
const topLevelGroups = (line: string) => {
  const groups: Array<{ open: number; close: number; commas: Array<number> }> = []
  const bars: Array<number> = []
  /** Where a declaration's name ends (`:` or `=` outside brackets): a union after it is not bare. */
  let named = -1
  let depth = 0
  let current: { open: number; commas: Array<number> } | undefined
  for (let index = 0; index < line.length; index++) {
    const char = line[index]!
    if (char === "\"" || char === "'" || char === "`") {
      const end = line.indexOf(char, index + 1)
      index = end === -1 ? line.length : end
    } else if (char === "=" && line[index + 1] === ">") {
      index++
    } else if ((char === ":" || char === "=") && depth === 0 && named === -1) {
      named = index
    } else if ("(<{[".includes(char)) {
      if (depth === 0) current = { open: index, commas: [] }
      depth++
    } else if (")>}]".includes(char)) {
      if (depth === 0) continue // closes a group broken onto an earlier line
      depth--
      if (depth === 0 && current !== undefined) {
        groups.push({ ...current, close: index })
        current = undefined
      }
    } else if (char === "," && depth === 1) {
      current?.commas.push(index)
    } else if (char === "|" && depth === 0 && line[index - 1] === " " && line[index + 1] === " ") {
      bars.push(index)
    }
  }
  return { groups, bars, named }
}

/**
 * Breaks a long line the way a formatter would: the longest bracket group with several items gets
 * one item per line, and a long union one member per line. The printer keeps lists on one line.
 */
const wrapLine = (line: string): Array<string> => {
  if (line.length <= maxWidth || /^\s*(\/\/|\/\*|\*)/.test(line)) return [line]
  const indent = /^\s*/.exec(line)![0]
  const { bars, groups, named } = topLevelGroups(line)
  if (bars.length > 0 && named === -1) {
    const trailing = line.endsWith(",") ? "," : ""
    const body = trailing === "" ? line : line.slice(0, -1)
    const cuts = [indent.length - 2, ...bars, body.length]
    const members = cuts.slice(1).map((cut, at) => body.slice(cuts[at]! + 2, cut).trim())
    return members.flatMap((member, at) => wrapLine(`${indent}| ${member}${at === members.length - 1 ? trailing : ""}`))
  }
  const candidates = groups.filter((group) => group.commas.length > 0 || group.close - group.open > 40)
  const parameters = candidates.find((group) =>
    line[group.open] === "(" && /^\)(\s*=>|:)/.test(line.slice(group.close))
  )
  if (candidates.length > 0) {
    const group = parameters ?? candidates.reduce((a, b) => (b.close - b.open > a.close - a.open ? b : a))
    const cuts = [group.open, ...group.commas, group.close]
    const items = cuts.slice(1).map((cut, at) => line.slice(cuts[at]! + 1, cut).trim())
    return [
      line.slice(0, group.open + 1),
      ...items.flatMap((item, at) => wrapLine(`${indent}  ${item}${at < items.length - 1 ? "," : ""}`)),
      ...wrapLine(`${indent}${line.slice(group.close)}`)
    ]
  }
  return [line]
}

const wrap = (text: string): string => text.split("\n").flatMap(wrapLine).join("\n")

const withoutExport = (text: string): string => text.replace(/^export\s+(default\s+)?/, "")

const addDoc = <T extends ts.Node>(node: T, symbol: ts.Symbol, checker: ts.TypeChecker): T => {
  const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim()
  if (doc === "") return node
  const body = doc.includes("\n") ? `*\n${doc.split("\n").map((line) => ` * ${line}`).join("\n")}\n ` : `* ${doc} `
  return ts.addSyntheticLeadingComment(node, ts.SyntaxKind.MultiLineCommentTrivia, body, true)
}

const lastInUnions = new Set(["undefined", "null", "never"])

/**
 * `import("…/node_modules/@effect/platform/dist/dts/HttpApp").Default` — a type the declaring
 * module does not import — reads as `HttpApp.Default`, as Effect's modules are namespaces named
 * after their file; a type from `src/` reads as its bare name.
 */
const qualified = (node: ts.ImportTypeNode): ts.TypeNode => {
  const argument = node.argument
  const specifier = ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal) ? argument.literal.text : undefined
  if (specifier === undefined || node.qualifier === undefined || node.isTypeOf) return node
  const fromSources = path.resolve(specifier).startsWith(path.join(root, "src") + path.sep)
  if (fromSources) return ts.factory.createTypeReferenceNode(node.qualifier, node.typeArguments)
  const namespace = ts.factory.createIdentifier(path.basename(specifier).replace(/\.(d\.)?[cm]?[jt]s$/, ""))
  const under = (name: ts.EntityName): ts.EntityName =>
    ts.isIdentifier(name)
      ? ts.factory.createQualifiedName(namespace, name)
      : ts.factory.createQualifiedName(under(name.left), name.right)
  return ts.factory.createTypeReferenceNode(under(node.qualifier), node.typeArguments)
}

/**
 * The checker lists a union's members in the order their types were created, which depends on
 * what was checked before; sorting them keeps the reference the same whichever program prints it.
 */
const normalize = (node: ts.TypeNode, file: ts.SourceFile): ts.TypeNode => {
  const visit = (child: ts.Node): ts.Node => {
    const visited = ts.visitEachChild(child, visit, undefined)
    if (ts.isImportTypeNode(visited)) return qualified(visited)
    if (!ts.isUnionTypeNode(visited)) return visited
    const members = visited.types.map((member) => ({
      member,
      text: printer.printNode(ts.EmitHint.Unspecified, member, file)
    }))
    members.sort((a, b) =>
      Number(lastInUnions.has(a.text)) - Number(lastInUnions.has(b.text)) || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)
    )
    return ts.factory.updateUnionTypeNode(visited, ts.factory.createNodeArray(members.map(({ member }) => member)))
  }
  return visit(node) as ts.TypeNode
}

class SignaturePrinter {
  constructor(readonly checker: ts.TypeChecker) {}

  print(node: ts.Node, file: ts.SourceFile): string {
    return wrap(reindent(printer.printNode(ts.EmitHint.Unspecified, node, file)).replace(/;$/gm, ""))
  }

  typeNode(type: ts.Type, enclosing: ts.Node): ts.TypeNode {
    const node = this.checker.typeToTypeNode(type, enclosing, builderFlags) ??
      ts.factory.createKeywordTypeNode(ts.SyntaxKind.UnknownKeyword)
    return normalize(node, enclosing.getSourceFile())
  }

  variable(name: string, symbol: ts.Symbol, declaration: ts.Node): string {
    const type = this.checker.getTypeOfSymbolAtLocation(symbol, declaration)
    const statement = ts.factory.createVariableStatement(
      [ts.factory.createModifier(ts.SyntaxKind.DeclareKeyword)],
      ts.factory.createVariableDeclarationList(
        [ts.factory.createVariableDeclaration(name, undefined, this.typeNode(type, declaration))],
        ts.NodeFlags.Const
      )
    )
    return this.print(statement, declaration.getSourceFile())
  }

  functionDeclaration(name: string, symbol: ts.Symbol, declaration: ts.Node): string {
    const type = this.checker.getTypeOfSymbolAtLocation(symbol, declaration)
    return type.getCallSignatures().map((signature) => {
      const printed = this.checker.signatureToSignatureDeclaration(
        signature,
        ts.SyntaxKind.FunctionDeclaration,
        declaration,
        builderFlags
      ) as ts.FunctionDeclaration | undefined
      if (printed === undefined) return `declare function ${name}(...)`
      const named = ts.factory.createFunctionDeclaration(
        [ts.factory.createModifier(ts.SyntaxKind.DeclareKeyword)],
        undefined,
        name,
        printed.typeParameters,
        printed.parameters,
        printed.type,
        undefined
      )
      return this.print(named, declaration.getSourceFile())
    }).join("\n")
  }

  /**
   * An interface as written, without its `@internal` members; one that extends others lists every
   * member, inherited ones included, so `interface Stats extends PoolStats {}` says something.
   */
  interface(name: string, symbol: ts.Symbol, declaration: ts.InterfaceDeclaration): string {
    if (declaration.heritageClauses === undefined) {
      const file = declaration.getSourceFile()
      let text = file.text.slice(declaration.getStart(), declaration.end)
      for (const member of [...declaration.members].reverse()) {
        if (!isInternal(member)) continue
        const start = member.getFullStart() - declaration.getStart()
        text = text.slice(0, start) + text.slice(member.end - declaration.getStart())
      }
      return withoutExport(text)
    }
    const type = this.checker.getDeclaredTypeOfSymbol(symbol)
    const members = this.checker.getPropertiesOfType(type).flatMap((property) => {
      const propertyDeclaration = property.declarations?.[0]
      if (propertyDeclaration === undefined || isInternal(propertyDeclaration)) return []
      const readonly = (ts.getCombinedModifierFlags(propertyDeclaration as ts.Declaration) & ts.ModifierFlags.Readonly) !== 0
      const optional = (property.flags & ts.SymbolFlags.Optional) !== 0
      // The declared name keeps computed keys such as `[WorkerModuleTypeId]` readable.
      const declaredName = ts.getNameOfDeclaration(propertyDeclaration as ts.Declaration)
      const propertyName = ts.factory.createIdentifier(declaredName?.getText() ?? property.name)
      let propertyType = this.checker.getTypeOfSymbolAtLocation(property, declaration)
      if (optional && !this.includesUndefined(propertyDeclaration)) propertyType = this.checker.getNonNullableType(propertyType)
      const signature = ts.factory.createPropertySignature(
        readonly ? [ts.factory.createModifier(ts.SyntaxKind.ReadonlyKeyword)] : undefined,
        propertyName,
        optional ? ts.factory.createToken(ts.SyntaxKind.QuestionToken) : undefined,
        this.typeNode(propertyType, declaration)
      )
      return [addDoc(signature, property, this.checker)]
    })
    const node = ts.factory.createInterfaceDeclaration(
      undefined,
      name,
      declaration.typeParameters,
      undefined,
      members
    )
    return this.print(node, declaration.getSourceFile())
  }

  /** Whether an optional property was written with `| undefined` (under exactOptionalPropertyTypes). */
  private includesUndefined(declaration: ts.Node): boolean {
    const typeNode = ts.isPropertySignature(declaration) ? declaration.type : undefined
    return typeNode !== undefined && /\bundefined\b/.test(typeNode.getText())
  }

  class(name: string, declaration: ts.ClassDeclaration): string {
    const typeParameters = declaration.typeParameters === undefined
      ? ""
      : `<${declaration.typeParameters.map((parameter) => parameter.getText()).join(", ")}>`
    const heritage = (declaration.heritageClauses ?? []).map((clause) => ` ${clause.getText()}`).join("")
    const members = declaration.members.flatMap((member) => {
      const flags = ts.getCombinedModifierFlags(member as ts.Declaration)
      if ((flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0 || isInternal(member)) return []
      if (member.name !== undefined && ts.isPrivateIdentifier(member.name)) return []
      const memberName = member.name?.getText() ?? ""
      const isStatic = (flags & ts.ModifierFlags.Static) !== 0 ? "static " : ""
      if (ts.isGetAccessorDeclaration(member)) {
        const signature = this.checker.getSignatureFromDeclaration(member)
        const returned = signature === undefined ? "unknown" : this.checker.typeToString(
          signature.getReturnType(),
          member,
          ts.TypeFormatFlags.NoTruncation
        )
        return [`  ${isStatic}get ${memberName}(): ${returned}`]
      }
      if (ts.isPropertyDeclaration(member) || ts.isMethodDeclaration(member)) {
        const symbol = this.checker.getSymbolAtLocation(member.name)
        if (symbol === undefined) return []
        const readonly = (flags & ts.ModifierFlags.Readonly) !== 0 ? "readonly " : ""
        const type = this.checker.typeToString(this.checker.getTypeOfSymbolAtLocation(symbol, member), member, ts.TypeFormatFlags.NoTruncation)
        return [`  ${isStatic}${readonly}${memberName}: ${type}`]
      }
      return []
    })
    return `declare class ${name}${typeParameters}${heritage} {${members.length === 0 ? "" : `\n${members.join("\n")}\n`}}`
  }
}

/**
 * The type aliases of `src/` that no module exports under that name (`Forked`, or `TaskKind` from
 * `internal/`): shown under a signature that names them, since they have no entry of their own.
 */
const hiddenTypesOf = (program: ts.Program): Map<string, string> => {
  const hidden = new Map<string, string>()
  const sources = path.join(root, "src") + path.sep
  for (const file of program.getSourceFiles()) {
    if (!path.resolve(file.fileName).startsWith(sources)) continue
    for (const statement of file.statements) {
      if (ts.isTypeAliasDeclaration(statement) && !hidden.has(statement.name.text)) {
        hidden.set(statement.name.text, withoutExport(statement.getText()))
      }
    }
  }
  return hidden
}

const withLocalTypes = (signature: string, local: ReadonlyMap<string, string>): string => {
  const used = [...local.keys()].filter((name) => new RegExp(`\\b${name}\\b`).test(signature) && !signature.startsWith(`type ${name}`))
  return used.length === 0 ? signature : [signature, ...used.map((name) => local.get(name)!)].join("\n\n")
}

interface Described {
  readonly entry: Entry | undefined
  readonly problems: ReadonlyArray<string>
}

const describe = (
  symbol: ts.Symbol,
  checker: ts.TypeChecker,
  printer: SignaturePrinter,
  local: ReadonlyMap<string, string>
): Described => {
  const documented = symbol.declarations?.find((declaration) => docOf(declaration) !== undefined) ??
    symbol.declarations?.[0]
  if (documented === undefined) return { entry: undefined, problems: [] }
  const doc = docOf(documented)
  if (doc?.tags.some((tag) => tag.name === "internal")) return { entry: undefined, problems: [] }
  const where = `${relative(documented.getSourceFile().fileName)}:${lineOf(documented)}`
  const target = (symbol.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(symbol) : symbol
  const declaration = target.declarations?.[0]
  if (declaration === undefined) return { entry: undefined, problems: [`${where}: ${symbol.name} has no declaration`] }
  const name = symbol.name
  let kind: string
  let signature: string
  if (ts.isInterfaceDeclaration(declaration)) {
    kind = "interface"
    signature = printer.interface(name, target, declaration)
  } else if (ts.isTypeAliasDeclaration(declaration)) {
    kind = "type"
    signature = withoutExport(declaration.getText())
  } else if (ts.isClassDeclaration(declaration)) {
    kind = "class"
    signature = printer.class(name, declaration)
  } else if (ts.isFunctionDeclaration(declaration)) {
    kind = "function"
    signature = printer.functionDeclaration(name, target, declaration)
  } else if (ts.isSourceFile(declaration) || ts.isModuleDeclaration(declaration)) {
    kind = "namespace"
    signature = ""
  } else {
    const type = checker.getTypeOfSymbolAtLocation(target, declaration)
    kind = type.getCallSignatures().length > 0 ? "function" : "constant"
    signature = printer.variable(name, target, declaration)
  }
  const problems: Array<string> = []
  const missing = (what: string) => problems.push(`${where}: ${name} has no ${what}`)
  const description = doc?.description ?? ""
  const since = doc === undefined ? undefined : tagText(doc, "since")
  const category = doc === undefined ? undefined : tagText(doc, "category")
  const examples = doc?.tags.filter((tag) => tag.name === "example").map((tag) => tag.text) ?? []
  if (description === "") missing("summary")
  if (since === undefined || since === "") missing("@since")
  if (kind !== "namespace" && (category === undefined || category === "")) missing("@category")
  if (examples.length === 0) missing("@example")
  for (const example of examples) {
    if (!fencesOf(example.split("\n")).some(isTypeScript)) problems.push(`${where}: an @example of ${name} has no \`\`\`ts block`)
  }
  return {
    entry: {
      name,
      kind,
      signature: withLocalTypes(signature, local),
      description,
      since: since ?? "",
      category: category ?? "",
      examples
    },
    problems
  }
}

const modulePage = (
  name: string,
  file: ts.SourceFile,
  exposure: Page["exposure"],
  checker: ts.TypeChecker,
  hidden: ReadonlyMap<string, string>
): { page: Page; problems: ReadonlyArray<string> } => {
  const problems: Array<string> = []
  const moduleSymbol = checker.getSymbolAtLocation(file)
  const moduleDoc = moduleDocOf(file)
  const since = moduleDoc === undefined ? undefined : tagText(moduleDoc, "since")
  if (moduleDoc === undefined || moduleDoc.description === "") {
    problems.push(`${relative(file.fileName)}:1: the module has no doc comment`)
  } else if (since === undefined) problems.push(`${relative(file.fileName)}:1: the module's doc comment has no @since`)
  const printer = new SignaturePrinter(checker)
  const exports = moduleSymbol === undefined ? [] : checker.getExportsOfModule(moduleSymbol)
  const exported = new Set(exports.map((symbol) => symbol.name))
  const local = new Map([...hidden].filter(([name]) => !exported.has(name)))
  const entries = exports.flatMap((symbol) => {
    const described = describe(symbol, checker, printer, local)
    problems.push(...described.problems)
    return described.entry === undefined ? [] : [described.entry]
  })
  return {
    page: { name, file: relative(file.fileName), exposure, description: moduleDoc?.description ?? "", since, entries },
    problems
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/** GitHub's heading anchors, numbered when a heading repeats. */
class Slugger {
  private readonly seen = new Map<string, number>()
  slug(heading: string): string {
    const base = heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").trim().replace(/\s/g, "-")
    const count = this.seen.get(base) ?? 0
    this.seen.set(base, count + 1)
    return count === 0 ? base : `${base}-${count}`
  }
}

const byName = <A extends { readonly name: string }>(a: A, b: A): number =>
  a.name.localeCompare(b.name, "en", { sensitivity: "base" }) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

const generatedNote = (sources: string): string =>
  `<!-- Generated by scripts/api-docs.ts from ${sources}. Do not edit: run \`npm run docs:api\`. -->`

/** `{@link name}` becomes a link to the entry on the same page or on another module's page. */
const renderLinks = (text: string, anchors: ReadonlyMap<string, string>): string =>
  text.replace(/\{@link(?:code|plain)?\s+([^\s}|]+)(?:\s*\|?\s*([^}]*))?\}/g, (_, target: string, label: string | undefined) => {
    const shown = label !== undefined && label.trim() !== "" ? label.trim() : `\`${target}\``
    const anchor = anchors.get(target)
    return anchor === undefined ? shown : `[${shown}](${anchor})`
  })

const importLines = (page: Page): string => {
  const subpath = `${packageName}/${page.name}`
  if (page.exposure === "namespace") {
    return [
      `import { ${page.name} } from "${packageName}"`,
      `// or, loading this module alone:`,
      `import * as ${page.name} from "${subpath}"`
    ].join("\n")
  }
  const first = [...page.entries].sort(byName)[0]?.name ?? page.name
  return [
    `import { ${first} } from "${packageName}"`,
    `// or, loading this module alone:`,
    `import { ${first} } from "${subpath}"`
  ].join("\n")
}

/** A page's headings in order — title, contents, then each category and its entries — with anchors. */
const layoutOf = (page: Page) => {
  const slugger = new Slugger()
  const title = `${page.name} module`
  slugger.slug(title)
  slugger.slug("Contents")
  const categories = new Map<string, Array<Entry>>()
  for (const entry of [...page.entries].sort(byName)) {
    const list = categories.get(entry.category) ?? []
    list.push(entry)
    categories.set(entry.category, list)
  }
  const sections = [...categories.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, entries]) => ({
      category,
      anchor: slugger.slug(category),
      entries: entries.map((entry) => ({ entry, anchor: slugger.slug(entry.name) }))
    }))
  return { title, sections }
}

const renderPage = (page: Page, crossLinks: ReadonlyMap<string, string>): string => {
  const { sections, title } = layoutOf(page)
  const anchors = new Map(crossLinks)
  for (const section of sections) {
    for (const { anchor, entry } of section.entries) anchors.set(entry.name, `#${anchor}`)
  }
  const out: Array<string> = [
    generatedNote(`the TSDoc in ${page.file}`),
    "",
    `# ${title}`,
    "",
    renderLinks(page.description, anchors),
    "",
    "```ts",
    importLines(page),
    "```",
    ""
  ]
  if (page.since !== undefined) out.push(`Added in v${page.since}.`, "")
  out.push("## Contents", "")
  for (const section of sections) {
    const links = section.entries.map(({ anchor, entry }) => `[${entry.name}](#${anchor})`).join(", ")
    out.push(`- [${section.category}](#${section.anchor}): ${links}`)
  }
  out.push("")
  for (const section of sections) {
    out.push(`## ${section.category}`, "")
    for (const { entry } of section.entries) {
      out.push(`### ${entry.name}`, "", `${entry.kind} · since v${entry.since}`, "", renderLinks(entry.description, anchors), "")
      if (entry.signature !== "") out.push("```ts", entry.signature, "```", "")
      for (const example of entry.examples) out.push("**Example**", "", example, "")
    }
  }
  return `${out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`
}

const renderIndex = (pages: ReadonlyArray<Page>, rootDoc: DocComment | undefined, namespaces: ReadonlyMap<string, Entry>): string => {
  const out: Array<string> = [
    generatedNote("the TSDoc in src/*.ts"),
    "",
    "# API reference",
    ""
  ]
  if (rootDoc !== undefined && rootDoc.description !== "") out.push(rootDoc.description, "")
  out.push(
    `Every module is exported from the package root, \`${packageName}\`, and also on its own as`,
    `\`${packageName}/<Module>\` (import the module alone where loading little matters, as in a worker`,
    "module). Each page groups the module's exports by category and gives, for each one, its",
    "signature, what it does, when it was added, and an example that `npm test` compiles.",
    "",
    "| module | from the package root | what it is for |",
    "|---|---|---|"
  )
  for (const page of [...pages].sort(byName)) {
    const entry = namespaces.get(page.name)
    const summary = (entry?.description ?? page.description).split("\n\n")[0]!.replace(/\s*\n\s*/g, " ")
    const exposure = page.exposure === "namespace" ? `\`import { ${page.name} }\`` : "each export by name"
    out.push(`| [${page.name}](${page.name}.md) | ${exposure} | ${summary.replace(/\|/g, "\\|")} |`)
  }
  out.push("")
  for (const page of [...pages].sort(byName)) {
    const entry = namespaces.get(page.name)
    if (entry === undefined || entry.examples.length === 0) continue
    out.push(`## ${page.name}`, "", `[${page.name}](${page.name}.md) at a glance:`, "")
    for (const example of entry.examples) out.push(example, "")
  }
  return `${out.join("\n").trimEnd()}\n`
}

/**
 * The reference as `docs/api/<file> → content`, and what is missing from the TSDoc. `program` must
 * contain `src/index.ts`.
 */
export const generateApiDocs = (program: ts.Program): { files: Map<string, string>; problems: ReadonlyArray<string> } => {
  const checker = program.getTypeChecker()
  const index = program.getSourceFile(indexFile)
  if (index === undefined) throw new Error("the program does not contain src/index.ts")
  const problems: Array<string> = []
  const pages: Array<Page> = []
  const namespaces = new Map<string, Entry>()
  const indexPrinter = new SignaturePrinter(checker)
  const hidden = hiddenTypesOf(program)
  for (const statement of index.statements) {
    if (!ts.isExportDeclaration(statement) || statement.moduleSpecifier === undefined) continue
    const target = checker.getSymbolAtLocation(statement.moduleSpecifier)?.valueDeclaration
    if (target === undefined || !ts.isSourceFile(target)) continue
    const fileName = path.basename(target.fileName, ".ts")
    const clause = statement.exportClause
    if (clause !== undefined && ts.isNamespaceExport(clause)) {
      const symbol = checker.getSymbolAtLocation(clause.name)
      if (symbol !== undefined) {
        const described = describe(symbol, checker, indexPrinter, new Map())
        problems.push(...described.problems)
        if (described.entry !== undefined) namespaces.set(clause.name.text, described.entry)
      }
      const { page, problems: pageProblems } = modulePage(clause.name.text, target, "namespace", checker, hidden)
      pages.push(page)
      problems.push(...pageProblems)
    } else if (clause === undefined) {
      const { page, problems: pageProblems } = modulePage(fileName, target, "flat", checker, hidden)
      pages.push(page)
      problems.push(...pageProblems)
    } else {
      problems.push(`${relative(index.fileName)}:${lineOf(statement)}: named re-exports are not documented; export the module as a namespace or with \`export *\``)
    }
  }
  const crossLinks = new Map<string, string>()
  for (const page of pages) {
    crossLinks.set(page.name, `${page.name}.md`)
    for (const section of layoutOf(page).sections) {
      for (const { anchor, entry } of section.entries) {
        crossLinks.set(`${page.name}.${entry.name}`, `${page.name}.md#${anchor}`)
        if (page.exposure === "flat") crossLinks.set(entry.name, `${page.name}.md#${anchor}`)
      }
    }
  }
  const files = new Map<string, string>()
  files.set("README.md", renderIndex(pages, moduleDocOf(index), namespaces))
  for (const page of pages) files.set(`${page.name}.md`, renderPage(page, crossLinks))
  return { files, problems }
}

/** What differs between `files` and `docs/api/`, one line per file. */
export const staleApiDocs = (files: ReadonlyMap<string, string>): ReadonlyArray<string> => {
  const stale: Array<string> = []
  const present = fs.existsSync(apiDir) ? fs.readdirSync(apiDir).filter((name) => name.endsWith(".md")) : []
  for (const [name, content] of files) {
    const file = path.join(apiDir, name)
    if (!fs.existsSync(file)) stale.push(`docs/api/${name} is missing`)
    else if (fs.readFileSync(file, "utf8") !== content) stale.push(`docs/api/${name} is out of date`)
  }
  for (const name of present) if (!files.has(name)) stale.push(`docs/api/${name} documents nothing that exists`)
  return stale
}

const main = (): void => {
  const check = process.argv.includes("--check")
  const program = ts.createProgram([indexFile], projectOptions())
  const { files, problems } = generateApiDocs(program)
  for (const problem of problems) console.error(`error: ${problem}`)
  if (check) {
    const stale = staleApiDocs(files)
    for (const line of stale) console.error(`error: ${line}`)
    if (stale.length > 0) console.error("The API reference is out of date: run `npm run docs:api` and commit docs/api/.")
    process.exitCode = problems.length > 0 || stale.length > 0 ? 1 : 0
    return
  }
  fs.mkdirSync(apiDir, { recursive: true })
  for (const name of fs.readdirSync(apiDir)) {
    if (name.endsWith(".md") && !files.has(name)) fs.rmSync(path.join(apiDir, name))
  }
  for (const [name, content] of files) {
    const file = path.join(apiDir, name)
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== content) fs.writeFileSync(file, content)
  }
  console.log(`docs/api: ${files.size} pages`)
  if (problems.length > 0) {
    console.error(`${problems.length} export(s) lack documentation; the pages were written anyway.`)
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()

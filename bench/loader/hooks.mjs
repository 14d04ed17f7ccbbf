// Module hooks for the benchmarks: `.ts` files are compiled with TypeScript's own transpiler,
// with the project's compiler options, so the library runs as the JavaScript `npm run build`
// emits. tsx's transform (used by `npm start` and the tests) also wraps every named closure in a
// call that sets its `name` property, which costs time and heap on each call that makes one; that
// overhead belongs to the dev loader, not to the library, so the figures leave it out.
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const compilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  sourceMap: false,
  inlineSourceMap: true
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (error) {
    // Imports name the emitted `.js`; in the source tree the file is `.ts`.
    if (error?.code === "ERR_MODULE_NOT_FOUND" && /^\.\.?\//.test(specifier) && specifier.endsWith(".js")) {
      return next(specifier.slice(0, -3) + ".ts", context)
    }
    throw error
  }
}

export async function load(url, context, next) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return next(url, context)
  const fileName = fileURLToPath(url)
  const source = await readFile(fileName, "utf8")
  const { outputText } = ts.transpileModule(source, { compilerOptions, fileName })
  return { format: "module", source: outputText, shortCircuit: true }
}

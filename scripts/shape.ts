/**
 * `bun run shape`: the two rules of the code's shape that a reader relies on, checked in CI.
 * - No function longer than 80 lines in the MCP server, the modules beside it, or the tracker: a longer one
 *   does several things that deserve names of their own.
 * - No import cycle anywhere in the repository (type-only and dynamic imports count): files that import each
 *   other cannot be read, changed or tested one at a time.
 * - index.ts, the MCP server, stays a file one reads in a sitting: at most MAX_SERVER_LINES lines.
 * Prints each offender as `path:line` with what is wrong and exits 1 if there is any.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

export const MAX_FUNCTION_LINES = 80;
// 2,130 since issue 21: get_task and update_task, with the task text they share, need about 230 lines more.
export const MAX_SERVER_LINES = 2130;

const root = resolve(import.meta.dir, "..");
const SKIPPED_FOLDERS = new Set(["node_modules", "dist", "coverage", "data", ".git"]);

/** Every .ts file under `folder` (repository-relative), skipping build output and dependencies. */
function sourceFiles(folder: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
    const path = folder ? `${folder}/${entry.name}` : entry.name;
    if (entry.isDirectory() && !SKIPPED_FOLDERS.has(entry.name) && !entry.name.startsWith(".")) files.push(...sourceFiles(path));
    else if (entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) files.push(path);
  }
  return files;
}

const isTest = (path: string) => path.endsWith(".test.ts");
/** The code whose functions must stay short: the server and the modules beside it, and the tracker. */
const isMeasured = (path: string) => !isTest(path) && (!path.includes("/") || path.startsWith("tracker/"));

function parse(path: string): ts.SourceFile {
  return ts.createSourceFile(path, readFileSync(join(root, path), "utf8"), ts.ScriptTarget.Latest, true);
}

function functionName(node: ts.Node): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isAccessor(node)) && node.name) {
    return node.name.getText();
  }
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  if (parent && ts.isCallExpression(parent)) return `a callback of ${parent.expression.getText().slice(0, 40)}`;
  return "an anonymous function";
}

/** `path:line name is N lines` for each function or method longer than MAX_FUNCTION_LINES. */
export function longFunctions(path: string, source = parse(path)): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      const lines = last - first + 1;
      if (lines > MAX_FUNCTION_LINES) found.push(`${path}:${first} ${functionName(node)} is ${lines} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The repository files `path` imports by a relative specifier: static, type-only, re-exports and import(). */
function importsOf(path: string, files: Set<string>, source = parse(path)): string[] {
  const specifiers: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) specifiers.push(argument.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return specifiers
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => relative(root, resolve(root, dirname(path), specifier)))
    .flatMap((target) => [target, `${target}.ts`, `${target}/index.ts`].filter((candidate) => files.has(candidate)).slice(0, 1));
}

/** Each cycle of the import graph once, as the files along it (depth-first search, Tarjan-free: the graph is small). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join(" ");
        if (!seen.has(key)) seen.add(key), cycles.push(cycle);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

if (import.meta.main) {
  const files = sourceFiles("");
  const known = new Set(files);
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const path of files) {
    const source = parse(path);
    graph.set(path, importsOf(path, known, source));
    if (isMeasured(path)) problems.push(...longFunctions(path, source));
  }
  const serverLines = readFileSync(join(root, "index.ts"), "utf8").split("\n").length - 1;
  if (serverLines > MAX_SERVER_LINES) problems.push(`index.ts is ${serverLines} lines, over ${MAX_SERVER_LINES}`);
  for (const cycle of importCycles(graph)) problems.push(`import cycle: ${[...cycle, cycle[0]].join(" -> ")}`);
  for (const problem of problems) console.error(problem);
  const measured = files.filter(isMeasured).length;
  console.log(
    problems.length
      ? `shape: ${problems.length} problem(s) in ${files.length} files`
      : `shape: no function over ${MAX_FUNCTION_LINES} lines in ${measured} files, no import cycle among ${files.length}`,
  );
  process.exit(problems.length ? 1 : 0);
}

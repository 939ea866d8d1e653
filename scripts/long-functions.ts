/**
 * `bun run scripts/long-functions.ts [FILE|DIR ...]`: prints every function longer than 80 lines (from
 * its signature's line to its closing brace's) and exits 1 if there is any. Methods, constructors,
 * accessors, arrow functions and function expressions count; test files do not. Without arguments it
 * checks the MCP server, its import/export module and the tracker (issue 20's rule).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const MAX_LINES = 80;
const ROOT = new URL("..", import.meta.url).pathname;
const DEFAULT_PATHS = ["index.ts", "transfer.ts", "tracker"];

/** The .ts/.tsx files under each path, test files and dependencies left out. */
function sourceFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) => {
    const child = join(path, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(child);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [child] : [];
  });
}

function functionName(node: ts.Node): string {
  const named = node as { name?: ts.Node };
  if (named.name && ts.isIdentifier(named.name)) return named.name.text;
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isCallExpression(parent)) return `callback of ${parent.expression.getText().slice(0, 40)}`;
  return "(anonymous)";
}

interface FunctionLength {
  file: string;
  line: number;
  name: string;
  lines: number;
}

/** Every function of the file with its length in lines. */
function functionLengths(file: string): FunctionLength[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const found: FunctionLength[] = [];
  const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line + 1;
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = lineOf(node.getStart(source));
      const lines = lineOf(node.getEnd()) - first + 1;
      found.push({ file: relative(ROOT, file), line: first, name: functionName(node), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

if (import.meta.main) {
  const paths = process.argv.slice(2);
  const files = (paths.length ? paths : DEFAULT_PATHS.map((path) => join(ROOT, path))).flatMap(sourceFiles);
  const functions = files.flatMap(functionLengths);
  const offenders = functions.filter((fn) => fn.lines > MAX_LINES);
  for (const { file, line, name, lines } of offenders)
    console.log(`${file}:${line}: ${name} is ${lines} lines (at most ${MAX_LINES})`);
  if (offenders.length) process.exit(1);
  const longest = functions.reduce((a, b) => (b.lines > a.lines ? b : a), { file: "-", line: 0, name: "none", lines: 0 });
  console.log(
    `no function over ${MAX_LINES} lines in ${files.length} files; the longest: ${longest.name} (${longest.file}:${longest.line}), ${longest.lines} lines`,
  );
}

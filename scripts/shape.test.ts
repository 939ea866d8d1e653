import { describe, expect, test } from "bun:test";
import ts from "typescript";
import { importCycles, longFunctions, MAX_FUNCTION_LINES } from "./shape.ts";

const sourceOf = (text: string) => ts.createSourceFile("x.ts", text, ts.ScriptTarget.Latest, true);
const body = (lines: number) => Array.from({ length: lines }, (_, i) => `  const v${i} = ${i};`).join("\n");

describe("longFunctions", () => {
  test("names a function, a method and an arrow over the limit, with their first line", () => {
    const long = body(MAX_FUNCTION_LINES);
    const text = `function a() {\n${long}\n}\nclass C {\n  m() {\n${long}\n  }\n}\nconst f = () => {\n${long}\n};\n`;
    expect(longFunctions("x.ts", sourceOf(text))).toEqual([
      `x.ts:1 a is ${MAX_FUNCTION_LINES + 2} lines`,
      `x.ts:${MAX_FUNCTION_LINES + 4} m is ${MAX_FUNCTION_LINES + 2} lines`,
      `x.ts:${2 * MAX_FUNCTION_LINES + 7} f is ${MAX_FUNCTION_LINES + 2} lines`,
    ]);
  });

  test("lets a function of exactly the limit pass", () => {
    expect(longFunctions("x.ts", sourceOf(`function a() {\n${body(MAX_FUNCTION_LINES - 2)}\n}\n`))).toEqual([]);
  });
});

describe("importCycles", () => {
  test("finds each cycle once, whichever file the search starts from", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["d.ts"]],
      ["e.ts", ["a.ts"]],
    ]);
    expect(importCycles(graph)).toEqual([["a.ts", "b.ts", "c.ts"], ["d.ts"]]);
  });

  test("a graph that only points one way has none", () => {
    const graph = new Map([
      ["a.ts", ["b.ts", "c.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", []],
    ]);
    expect(importCycles(graph)).toEqual([]);
  });
});

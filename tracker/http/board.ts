// The board's static files: tracker/board/index.html and the assets it imports, bundled by Bun
// (HTML imports) and served without authentication at GET / (the board asks for the API key itself).
// Served as plain responses rather than as Bun's HTML route, so that they carry BOARD_HEADERS. Bun
// answers their GET and HEAD; any other method goes on to the pipeline, which answers 405.

import { basename } from "node:path";
import board from "../board/index.html";

/** The page runs only its own bundled script and talks only to this origin (tracker/board/index.html repeats it). */
export const BOARD_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

interface BoardFile {
  path: string;
  body: Blob | ArrayBuffer;
  headers: Record<string, string>;
}

let files: Promise<BoardFile[]> | undefined;

/** The board's routes, by path, with the methods Bun answers them for. */
export type BoardRoutes = Record<string, { GET: Response; HEAD: Response }>;

/**
 * Bun.serve `routes`: `/` and every asset of the page. In the compiled dist/task-tracker they are
 * already bundled (board.files); run from source, they are bundled once, at the first start.
 */
export async function boardRoutes(): Promise<BoardRoutes> {
  files ??= board.files ? Promise.resolve(compiledFiles(board.files)) : bundleFromSource();
  return Object.fromEntries(
    (await files).map((file) => {
      const response = new Response(file.body, { headers: { ...file.headers, ...BOARD_HEADERS } });
      return [file.path, { GET: response, HEAD: response }];
    }),
  );
}

function routePath(file: string): string {
  return file.endsWith(".html") ? "/" : `/${basename(file)}`;
}

function compiledFiles(bundled: NonNullable<typeof board.files>): BoardFile[] {
  return bundled.map((file) => ({ path: routePath(file.path), body: Bun.file(file.path), headers: file.headers }));
}

async function bundleFromSource(): Promise<BoardFile[]> {
  const build = await Bun.build({ entrypoints: [board.index], minify: true });
  if (!build.success) throw new AggregateError(build.logs, "The board (tracker/board/) did not build");
  return Promise.all(
    build.outputs.map(async (output) => ({
      path: routePath(output.path),
      body: await output.arrayBuffer(),
      headers: { "Content-Type": output.type },
    })),
  );
}

// The board's static files: tracker/board/index.html and the assets it imports, bundled by Bun
// (HTML imports) and served without authentication at GET / (the board asks for the API key itself).

import board from "../board/index.html";

/** Bun.serve `routes`: `/` and, through Bun, every asset the page imports. */
export const boardRoutes = { "/": board };

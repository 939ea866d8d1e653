// The npm package's postinstall: where it can, each installed command becomes the native binary itself
// instead of the Node.js launcher (launch.js) that spawns it, as esbuild does. An agent then runs one
// process (about 40 MB) instead of a Node.js process of about 40 MB more in front of it, and starts
// sooner. Plain CommonJS for Node.js 18 and later.
//
// bin/<command> of this package, where npm's bin link points, is replaced by a hard link to (or, across
// file systems, a copy of) the binary in this platform's package, which npm has already installed beside
// this one: nothing is downloaded. The launcher stays where the replacement cannot work or is not safe:
// - on Windows, where npm's .cmd shims run the bin file with node;
// - under another package manager than npm (Yarn 2+ runs every bin with node, pnpm's shims may too,
//   Bun is untried);
// - when this platform's package is missing, or its binary does not run here (it must answer --version);
// - with --ignore-scripts, which skips this script altogether.
// Nothing here fails the install or writes to the terminal: where the launcher stays, it says at run
// time what is wrong.

const { spawnSync } = require("node:child_process");
const { chmodSync, copyFileSync, linkSync, renameSync, rmSync } = require("node:fs");
const { join } = require("node:path");
const { binaryOf } = require("./launch.js");
const { bin } = require("../package.json");

/** Whether the installing package manager links our bin file as it is (npm does; see above). */
function nativeBinsWork() {
  const agent = process.env.npm_config_user_agent ?? "";
  return process.platform !== "win32" && agent.startsWith("npm/");
}

/** The path of `command`'s binary in this platform's package, or undefined when there is none. */
function installedBinary(command) {
  const binary = binaryOf(command);
  if (binary === undefined) return undefined;
  try {
    return require.resolve(binary.request);
  } catch {
    return undefined;
  }
}

/** Whether the binary runs on this machine: it answers --version as the MCP server does. */
function runsHere(binary) {
  const answer = spawnSync(binary, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
  return answer.status === 0 && answer.stdout.startsWith("task-tracking-mcp ");
}

/** Puts `binary` at `launcher`'s path in one step: a rename over it, so the path is never missing. */
function replaceLauncher(launcher, binary) {
  const temporary = `${launcher}.native-${process.pid}`;
  rmSync(temporary, { force: true });
  try {
    try {
      linkSync(binary, temporary);
    } catch {
      copyFileSync(binary, temporary); // another file system, or one without hard links
      chmodSync(temporary, 0o755);
    }
    renameSync(temporary, launcher);
  } finally {
    // A rename between two names of one file (a second run over a bin already linked) changes nothing
    // and leaves the temporary name behind; a failed one leaves it too.
    rmSync(temporary, { force: true });
  }
}

function optimize() {
  if (!nativeBinsWork()) return;
  const server = installedBinary("task-tracking-mcp");
  if (server === undefined || !runsHere(server)) return;
  for (const [command, file] of Object.entries(bin)) {
    const binary = installedBinary(command);
    if (binary === undefined) continue;
    try {
      replaceLauncher(join(__dirname, "..", file), binary);
    } catch {
      // The launcher stays at its path and runs the same binary, one process later.
    }
  }
}

try {
  optimize();
} catch {
  // Never fail an install over an optimisation: the launchers are in place.
}

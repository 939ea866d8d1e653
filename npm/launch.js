// The `task-tracking-mcp` and `task-tracker` commands of the npm package: each runs the native binary
// of the same name from this platform's package (task-tracking-mcp-<platform>, an optional dependency
// that npm installs only on its own os and cpu). Plain CommonJS for Node.js 18 and later. Where npm ran
// the postinstall (install.js) and the platform allows it, the native binary itself has taken the
// launcher's place at the bin path; the launcher is the command everywhere else (Windows,
// --ignore-scripts, Yarn, pnpm, a missing platform package).
//
// The binary gets this process's stdin, stdout and stderr as they are (stdout of the MCP server is
// the protocol: nothing here writes to it), its signals, and hands back its exit code.

const { spawn } = require("node:child_process");
const { constants } = require("node:os");

const PACKAGES = {
  "linux x64": "task-tracking-mcp-linux-x64",
  "linux arm64": "task-tracking-mcp-linux-arm64",
  "darwin arm64": "task-tracking-mcp-darwin-arm64",
  "darwin x64": "task-tracking-mcp-darwin-x64",
  "win32 x64": "task-tracking-mcp-windows-x64",
};

const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];

function fail(sentence) {
  process.stderr.write(`${sentence}\n`);
  process.exit(1);
}

/** This platform's package and the path of `command`'s binary inside it; undefined where none is built. */
function binaryOf(command) {
  const packageName = PACKAGES[`${process.platform} ${process.arch}`];
  if (packageName === undefined) return undefined;
  const file = process.platform === "win32" ? `${command}.exe` : command;
  return { packageName, request: `${packageName}/bin/${file}` };
}

function findBinary(command) {
  const platform = `${process.platform}-${process.arch}`;
  const binary = binaryOf(command);
  if (binary === undefined) {
    fail(
      `${command}: there is no binary for ${platform}; task-tracking-mcp ships for linux-x64, linux-arm64 (glibc), darwin-arm64, darwin-x64 and windows-x64.`,
    );
  }
  const { packageName, request } = binary;
  try {
    return require.resolve(request);
  } catch {
    fail(
      `${command}: the package ${packageName}, which holds the binary for ${platform}, is not installed. ` +
        "npm installs it with task-tracking-mcp unless optional dependencies were left out (--omit=optional, --no-optional) " +
        `or the C library is not glibc (Alpine); reinstall with: npm install -g task-tracking-mcp (or add ${packageName} yourself).`,
    );
  }
}

function launch(command) {
  const binary = findBinary(command);
  const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", windowsHide: true });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  child.on("error", (error) => fail(`${command}: could not run ${binary}: ${error.message}`));
  child.on("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // Ended by a signal: end the same way, so whoever started us sees it; 128 + n if that signal is ignored.
    for (const forwarded of FORWARDED_SIGNALS) process.removeListener(forwarded, forward);
    process.exitCode = 128 + (constants.signals[signal] ?? 0);
    process.kill(process.pid, signal);
  });
}

module.exports = { binaryOf, launch };

// npm/install.js, the npm package's postinstall, run by Node.js in a node_modules laid out as npm lays
// it out, with stand-ins for the platform package's binaries (shell scripts; one answers --version as
// the MCP server does): where it puts each binary in its launcher's place, and every case where it must
// leave the launcher and still exit 0 in silence. e2e/install.test.ts installs the real packages.

import { afterEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { platformPackageName, thisPlatform } from "../scripts/pack.ts";

const node = Bun.which("node");
const platform = thisPlatform();
const COMMANDS = ["task-tracking-mcp", "task-tracker"];
const LAUNCHER = '#!/usr/bin/env node\n"use strict";\nrequire("../lib/launch.js").launch("task-tracking-mcp");\n';
const ANSWERS_VERSION = '#!/bin/sh\necho "task-tracking-mcp 0.3.0"\n';
const NPM = "npm/11.19.1 node/v20.20.2 linux x64 workspaces/false";

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function writeExecutable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

/** node_modules with the main package (launchers) and, unless `binary` is null, the platform package. */
function layOut(binary: string | null, platformPackageDir?: string) {
  const root = mkdtempSync(join(tmpdir(), "tt-postinstall-"));
  roots.push(root);
  const main = join(root, "node_modules", "task-tracking-mcp");
  mkdirSync(join(main, "bin"), { recursive: true });
  mkdirSync(join(main, "lib"));
  for (const file of ["install.js", "launch.js"]) copyFileSync(join(import.meta.dir, file), join(main, "lib", file));
  const bin = Object.fromEntries(COMMANDS.map((command) => [command, `bin/${command}`]));
  writeFileSync(join(main, "package.json"), JSON.stringify({ name: "task-tracking-mcp", version: "0.3.0", bin }));
  for (const command of COMMANDS) writeExecutable(join(main, "bin", command), LAUNCHER);
  const platformDir = join(root, "node_modules", platformPackageName(platform!));
  if (binary !== null) {
    const realDir = platformPackageDir ?? platformDir;
    mkdirSync(join(realDir, "bin"), { recursive: true });
    if (realDir !== platformDir) symlinkSync(realDir, platformDir);
    for (const command of COMMANDS)
      writeExecutable(join(realDir, "bin", command), binary.replace("task-tracking-mcp 0", `${command} 0`));
  }
  return {
    launcher: (command: string) => join(main, "bin", command),
    binary: (command: string) => join(platformPackageDir ?? platformDir, "bin", command),
    /** The postinstall as npm runs it: from the package's directory, with npm's user agent. */
    postinstall(userAgent = NPM) {
      const result = Bun.spawnSync([node!, "lib/install.js"], {
        cwd: main,
        env: { PATH: process.env.PATH ?? "", npm_config_user_agent: userAgent },
      });
      return { code: result.exitCode, output: `${result.stdout}${result.stderr}`, binDir: readdirSync(join(main, "bin")).sort() };
    },
  };
}

/** A directory on another file system than the temporary one, where Linux has it (tmpfs). */
const OTHER_FILE_SYSTEM = ["/dev/shm"].find(
  (dir) => process.platform === "linux" && statSync(dir, { throwIfNoEntry: false })?.dev !== statSync(tmpdir()).dev,
);

const SILENT_SUCCESS = { code: 0, output: "", binDir: [...COMMANDS].sort() };

if (!node || !platform || process.platform === "win32") {
  test.skip("npm's postinstall (needs Node.js and a platform with native bins)", () => {});
} else {
  describe("npm's postinstall (npm/install.js)", () => {
    test("puts each platform binary at its command's path, as a hard link", () => {
      const packages = layOut(ANSWERS_VERSION);
      expect(packages.postinstall()).toEqual(SILENT_SUCCESS);
      for (const command of COMMANDS)
        expect(statSync(packages.launcher(command)).ino).toBe(statSync(packages.binary(command)).ino);
    });

    test("run again over binaries already in place, changes nothing and leaves no temporary file", () => {
      const packages = layOut(ANSWERS_VERSION);
      packages.postinstall();
      expect(packages.postinstall()).toEqual(SILENT_SUCCESS);
      expect(statSync(packages.launcher("task-tracking-mcp")).ino).toBe(statSync(packages.binary("task-tracking-mcp")).ino);
    });

    test.skipIf(!OTHER_FILE_SYSTEM)(`copies the binary where a hard link cannot reach it (${OTHER_FILE_SYSTEM})`, () => {
      const elsewhere = mkdtempSync(join(OTHER_FILE_SYSTEM!, "tt-postinstall-platform-"));
      roots.push(elsewhere);
      const packages = layOut(ANSWERS_VERSION, elsewhere);
      expect(packages.postinstall()).toEqual(SILENT_SUCCESS);
      const installed = packages.launcher("task-tracking-mcp");
      expect(readFileSync(installed, "utf8")).toBe(ANSWERS_VERSION);
      expect(statSync(installed).mode & 0o777).toBe(0o755);
      expect(statSync(installed).ino).not.toBe(statSync(packages.binary("task-tracking-mcp")).ino);
    });

    const keepsTheLaunchers: Array<[string, string | null, string]> = [
      ["the platform package is missing", null, NPM],
      ["the binary does not run here (fails --version)", "#!/bin/sh\nexit 1\n", NPM],
      ["the binary answers --version with something else", '#!/bin/sh\necho "esbuild 0.25.0"\n', NPM],
      ["Yarn installs (it runs every bin with node)", ANSWERS_VERSION, "yarn/4.9.1 npm/? node/v20.20.2 linux x64"],
      ["pnpm installs (its shims may run the bin with node)", ANSWERS_VERSION, "pnpm/10.12.1 npm/? node/v20.20.2 linux x64"],
      ["no package manager says who it is", ANSWERS_VERSION, ""],
    ];
    for (const [when, binary, userAgent] of keepsTheLaunchers) {
      test(`keeps the launchers, and exits 0 in silence, when ${when}`, () => {
        const packages = layOut(binary);
        expect(packages.postinstall(userAgent)).toEqual(SILENT_SUCCESS);
        for (const command of COMMANDS) expect(readFileSync(packages.launcher(command), "utf8")).toBe(LAUNCHER);
      });
    }
  });
}

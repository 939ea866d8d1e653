// From npm to a working Claude Code: the tarballs `bun run pack` writes are installed with npm into an
// empty prefix, offline (no registry holds them, and nothing may be downloaded at install time); the
// installed commands run with Node.js and without Bun; the installed tracker serves, `doctor` passes,
// and Claude Code's own CLI registers the server with `claude mcp add --scope user` from another
// directory and finds it Connected. npm's postinstall makes each command the native binary itself (one
// process, no Node.js in front); installed with --ignore-scripts, the Node.js launcher is the command
// and works the same; a reinstall or an upgrade puts the new binary in place.
//
// Needs npm, and Claude Code's CLI: the dev dependency's node_modules/.bin/claude (or CLAUDE_BIN), never
// one on PATH, so every machine tests the same version. Without them the test is skipped with a loud
// warning on a developer's machine and fails in CI (CI=true).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import { PACK_DIR, platformPackageName, thisPlatform } from "../scripts/pack.ts";
import { JsonRpcClient } from "../testkit/json-rpc.ts";
import { Lines, ROOT } from "./harness.ts";

const VERSION = packageJson.version;
const platform = thisPlatform();
const npm = Bun.which("npm");
const node = Bun.which("node");
const devDependencyClaude = join(ROOT, "node_modules", ".bin", "claude");
const claude = process.env.CLAUDE_BIN || (existsSync(devDependencyClaude) ? devDependencyClaude : undefined);
const inCi = process.env.CI === "true";

const missing = [
  platform ? undefined : `a package for ${process.platform}-${process.arch}`,
  npm ? undefined : "npm",
  node ? undefined : "Node.js (node)",
  claude ? undefined : `Claude Code's CLI (${devDependencyClaude}: run bun install, or set CLAUDE_BIN)`,
].filter((thing) => thing !== undefined);
const MISSING = `e2e/install.test.ts needs ${missing.join(", ")}, so the npm install and Claude Code were NOT tested`;

/** The package sources: tarballs older than any of them are packed again. */
const PACKAGE_SOURCES = [
  "index.ts",
  "transfer.ts",
  "package.json",
  "bun.lock",
  "LICENSE",
  "npm/*.{js,md}",
  "scripts/pack.ts",
  "scripts/build.ts",
  "tracker/**/*.{ts,sql}",
];

function newestSourceMtime(): number {
  let newest = 0;
  for (const pattern of PACKAGE_SOURCES) {
    for (const file of new Bun.Glob(pattern).scanSync({ cwd: ROOT }))
      newest = Math.max(newest, statSync(join(ROOT, file)).mtimeMs);
  }
  return newest;
}

/** dist/npm's two tarballs for this machine: reused when newer than every source, else packed again. */
function tarballs(): { main: string; platform: string } {
  const paths = {
    main: join(PACK_DIR, `task-tracking-mcp-${VERSION}.tgz`),
    platform: join(PACK_DIR, `${platformPackageName(platform!)}-${VERSION}.tgz`),
  };
  const fresh = Object.values(paths).every((path) => existsSync(path) && statSync(path).mtimeMs > newestSourceMtime());
  if (!fresh) {
    const packed = Bun.spawnSync([process.execPath, "run", "scripts/pack.ts", "--platforms", platform!], {
      cwd: ROOT,
      stdin: "ignore",
    });
    if (packed.exitCode !== 0)
      throw new Error(`bun run pack failed (exit ${packed.exitCode}):\n${packed.stdout}${packed.stderr}`);
  }
  return paths;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string[], options: { env: Record<string, string>; cwd: string }): Run {
  const result = Bun.spawnSync(cmd, { ...options, stdin: "ignore" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

let work: string;
/** PATH of every command run here: Node.js and the installed commands, no Bun. */
let path: string;
let prefix: string;
/** The same packages installed with --ignore-scripts: the commands are the Node.js launchers. */
let launcherPrefix: string;

/** An installed command, by its path: npm links it into the prefix's bin/. */
function bin(command: string, into = prefix): string {
  return join(into, "bin", command);
}

/** The first bytes of the file an installed command's link points to. */
function head(command: string, into = prefix): string {
  return readFileSync(realpathSync(bin(command, into)))
    .subarray(0, 4)
    .toString("latin1");
}

/** The executable formats a platform package holds: ELF on Linux, Mach-O (64-bit) on macOS. */
const NATIVE_MAGIC = process.platform === "darwin" ? "\xcf\xfa\xed\xfe" : "\x7fELF";

function installOffline(into: string, packages: string[], flags: string[] = []): Run {
  // HOME and the cache are empty: no user's npmrc, nothing cached; --offline: nothing fetched.
  return run(
    [
      npm!,
      "install",
      "--global",
      "--prefix",
      into,
      "--offline",
      "--cache",
      join(work, "npm-cache"),
      "--no-audit",
      "--no-fund",
      "--no-update-notifier",
      ...flags,
      ...packages,
    ],
    { env: { PATH: process.env.PATH ?? "", HOME: join(work, "npm-home") }, cwd: work },
  );
}

/** A directory of its own under the test's temporary directory. */
function freshDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface InstalledTracker {
  url: string;
  keyFile: string;
  stderr: Lines;
  stop(): Promise<number>;
}

const stops: Array<() => Promise<unknown>> = [];

/** The installed `task-tracker`, with its data in `home`'s data directory, on a free port. */
async function startInstalledTracker(home: string): Promise<InstalledTracker> {
  const child = Bun.spawn([bin("task-tracker")], {
    cwd: freshDir("tracker-cwd"),
    env: { PATH: path, HOME: home, PORT: "0" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const stderr = new Lines();
  void (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr.push(chunk);
    stderr.end();
  })();
  const stop = async () => {
    child.kill("SIGTERM");
    return child.exited;
  };
  stops.push(stop);
  const started = await Promise.race([
    stderr.waitFor((line) => line.includes('"tracker started"'), "the installed tracker to start"),
    child.exited.then((code) => {
      throw new Error(`the installed tracker exited with code ${code} before it started:\n${stderr.text()}`);
    }),
  ]);
  return {
    url: (JSON.parse(started) as { url: string }).url,
    keyFile: join(home, ".local", "share", "task-tracking", "api-key"),
    stderr,
    stop,
  };
}

/** The processes of `pid`'s tree, where /proc tells (Linux); undefined elsewhere. */
function processCount(pid: number): number | undefined {
  if (process.platform !== "linux") return undefined;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  return 1 + children.reduce((sum, child) => sum + (processCount(Number(child)) ?? 0), 0);
}

/** initialize and tools/list through an installed command: the tools' names, how many processes served. */
async function mcpSession(command: string): Promise<{ tools: string[]; processes: number | undefined; code: number }> {
  const client = new JsonRpcClient([command], {
    env: {
      PATH: path,
      HOME: freshDir("home-mcp"),
      TASK_TRACKING_API_KEY: "install-test-key",
      TASK_TRACKING_URL: "http://127.0.0.1:9",
    },
    cwd: work,
    requestTimeoutMs: 10_000,
  });
  try {
    await client.initialize();
    const tools = (await client.listTools()).map((tool) => tool.name);
    return { tools, processes: processCount(client.pid), code: await client.close() };
  } finally {
    await client.kill();
  }
}

/** `tarball` again as `version`: the same files, package.json's version and pins changed. An upgrade without a second build. */
function repackedAs(tarball: string, version: string): string {
  const dir = freshDir(`repack-${version}-${basename(tarball)}`);
  const env = { PATH: process.env.PATH ?? "" };
  expect(run(["tar", "-xzf", tarball, "-C", dir], { env, cwd: work }).code).toBe(0);
  const manifestPath = join(dir, "package", "package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  manifest.version = version;
  for (const name of Object.keys(manifest.optionalDependencies ?? {})) manifest.optionalDependencies[name] = version;
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  // npm installs a plain .tar as well as a .tgz; not compressing 100 MB of binaries saves the test seconds.
  const repacked = join(work, basename(tarball).replace(`${VERSION}.tgz`, `${version}.tar`));
  expect(run(["tar", "-cf", repacked, "-C", dir, "package"], { env, cwd: work }).code).toBe(0);
  return repacked;
}

if (missing.length > 0 && inCi) {
  test("npm install and Claude Code run in CI", () => {
    throw new Error(`CI=true but ${MISSING}`);
  });
} else if (missing.length > 0) {
  console.warn(`\n*** WARNING: ${MISSING} ***\n`);
  test.skip(`npm install and Claude Code (SKIPPED: ${MISSING})`, () => {});
} else {
  describe(`npm install -g of task-tracking-mcp and ${platformPackageName(platform!)}`, () => {
    let packed: { main: string; platform: string };

    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), "tt-install-"));
      const nodeOnly = freshDir("node-only-bin");
      symlinkSync(node!, join(nodeOnly, "node"));
      prefix = join(work, "prefix");
      path = `${join(prefix, "bin")}:${nodeOnly}`;
      packed = tarballs();
      launcherPrefix = join(work, "prefix-ignore-scripts");
      for (const [into, flags] of [
        [prefix, []],
        [launcherPrefix, ["--ignore-scripts"]],
      ] as const) {
        const installed = installOffline(into, [packed.main, packed.platform], [...flags]);
        if (installed.code !== 0)
          throw new Error(
            `npm install ${flags.join(" ")} failed (exit ${installed.code}):\n${installed.stdout}${installed.stderr}`,
          );
      }
    }, 240_000);

    afterAll(async () => {
      await Promise.allSettled(stops.map((stop) => stop()));
      rmSync(work, { recursive: true, force: true });
    });

    test("puts both commands on the prefix's PATH; they run with Node.js and no Bun", () => {
      const env = { PATH: path, HOME: freshDir("home-version") };
      expect(run([bin("task-tracking-mcp"), "--version"], { env, cwd: work })).toEqual({
        code: 0,
        stdout: `task-tracking-mcp ${VERSION}\n`,
        stderr: "",
      });
      expect(Bun.which("bun", { PATH: path })).toBeNull();
      const home = freshDir("home-paths");
      const dataDir = join(home, ".local", "share", "task-tracking");
      expect(run([bin("task-tracker"), "paths"], { env: { PATH: path, HOME: home }, cwd: work })).toEqual({
        code: 0,
        stdout: `data directory: ${dataDir}\ndatabase:       ${dataDir}/tracker.db\nAPI key file:   ${dataDir}/api-key\n`,
        stderr: "",
      });
    });

    test("npm's postinstall makes both commands the native binaries: one process answers MCP", async () => {
      for (const command of ["task-tracking-mcp", "task-tracker"]) {
        expect(head(command)).toBe(NATIVE_MAGIC);
        const platformBinary = join(prefix, "lib", "node_modules", platformPackageName(platform!), "bin", command);
        expect(statSync(realpathSync(bin(command))).ino).toBe(statSync(platformBinary).ino); // a hard link: no copy
      }
      const session = await mcpSession(bin("task-tracking-mcp"));
      expect(session.tools).toContain("get_next_task");
      expect(session.code).toBe(0);
      if (process.platform === "linux") expect(session.processes).toBe(1);
    });

    test("with --ignore-scripts the commands are the Node.js launchers, and MCP works through them", async () => {
      for (const command of ["task-tracking-mcp", "task-tracker"]) expect(head(command, launcherPrefix)).toBe("#!/u");
      expect(readFileSync(bin("task-tracking-mcp", launcherPrefix), "utf8")).toStartWith("#!/usr/bin/env node\n");
      expect(run([bin("task-tracking-mcp", launcherPrefix), "--version"], { env: { PATH: path }, cwd: work })).toEqual({
        code: 0,
        stdout: `task-tracking-mcp ${VERSION}\n`,
        stderr: "",
      });
      const session = await mcpSession(bin("task-tracking-mcp", launcherPrefix));
      expect(session.tools).toEqual((await mcpSession(bin("task-tracking-mcp"))).tools);
      expect(session.code).toBe(0);
      if (process.platform === "linux") expect(session.processes).toBe(2); // node and the binary
    });

    for (const [kind, into] of [
      ["native binary", () => prefix],
      ["launcher", () => launcherPrefix],
    ] as const) {
      test(`the installed command (${kind}) hands back the binary's exit code and output`, () => {
        expect(run([bin("task-tracking-mcp", into()), "no-such-command"], { env: { PATH: path }, cwd: work })).toEqual({
          code: 2,
          stdout: "",
          stderr: 'task-tracking-mcp: unknown argument "no-such-command"; see task-tracking-mcp --help\n',
        });
        const withoutKey = run([bin("task-tracking-mcp", into())], { env: { PATH: path }, cwd: work });
        expect([withoutKey.code, withoutKey.stdout]).toEqual([1, ""]);
        expect(withoutKey.stderr).toContain("TASK_TRACKING_API_KEY");
      });
    }

    test("the installed tracker keeps its key in the data directory, and doctor passes with it", async () => {
      const tracker = await startInstalledTracker(freshDir("home-doctor"));
      const key = readFileSync(tracker.keyFile, "utf8").trim();
      const doctor = run([bin("task-tracking-mcp"), "doctor"], {
        // As the README's recipe: the key stays in the tracker's key file.
        env: { PATH: path, TASK_TRACKING_URL: tracker.url, TASK_TRACKING_API_KEY_FILE: tracker.keyFile },
        cwd: freshDir("doctor-cwd"),
      });
      expect([doctor.code, doctor.stderr]).toEqual([0, ""]);
      expect(doctor.stdout).toContain("✓ API key accepted");
      expect(doctor.stdout).not.toContain(key);
      expect(await tracker.stop()).toBe(0);
    });

    for (const [kind, into] of [
      ["native binary", () => prefix],
      ["launcher", () => launcherPrefix],
    ] as const) {
      test(`a signal to the installed command (${kind}) reaches the MCP server, which stops cleanly`, async () => {
        const server = Bun.spawn([bin("task-tracking-mcp", into())], {
          cwd: work,
          env: { PATH: path, TASK_TRACKING_API_KEY: "launcher-signal-test-key", TASK_TRACKING_URL: "http://127.0.0.1:9" },
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        });
        const stderr = new Lines();
        void (async () => {
          for await (const chunk of server.stderr.pipeThrough(new TextDecoderStream())) stderr.push(chunk);
          stderr.end();
        })();
        await stderr.waitFor((line) => line.includes(`task-tracking-mcp ${VERSION} ready`), "the MCP server to be ready");
        server.kill("SIGTERM");
        expect(await server.exited).toBe(0);
        await stderr.whenEnded();
        expect(stderr.text()).toContain("stopping: SIGTERM");
        expect(await new Response(server.stdout).text()).toBe("");
      });
    }

    test("without the platform package, the commands name it and exit 1", () => {
      const bare = join(work, "prefix-without-platform");
      const installed = installOffline(bare, [packed.main]);
      expect(installed.code).toBe(0);
      expect(head("task-tracking-mcp", bare)).toBe("#!/u"); // the postinstall found no binary: the launcher stays
      const result = run([join(bare, "bin", "task-tracking-mcp"), "--version"], { env: { PATH: path }, cwd: work });
      expect([result.code, result.stdout]).toEqual([1, ""]);
      expect(result.stderr).toStartWith(
        `task-tracking-mcp: the package ${platformPackageName(platform!)}, which holds the binary for ${process.platform}-${process.arch}, is not installed.`,
      );
    });

    test("a reinstall and an upgrade put the new native binary in the launcher's place", () => {
      const upgraded = join(work, "prefix-upgrade");
      const platformBinary = join(upgraded, "lib", "node_modules", platformPackageName(platform!), "bin", "task-tracking-mcp");
      const linkedTo = () => statSync(realpathSync(bin("task-tracking-mcp", upgraded))).ino;
      const next = "99.0.0-upgrade";
      for (const tarballs of [
        [packed.main, packed.platform],
        [packed.main, packed.platform],
        [repackedAs(packed.main, next), repackedAs(packed.platform, next)],
      ]) {
        const installed = installOffline(upgraded, tarballs);
        expect(installed.code).toBe(0);
        expect(head("task-tracking-mcp", upgraded)).toBe(NATIVE_MAGIC);
        // The command is the binary npm has just put in the platform package, never the one before.
        expect(linkedTo()).toBe(statSync(platformBinary).ino);
      }
      const manifest = join(upgraded, "lib", "node_modules", "task-tracking-mcp", "package.json");
      expect(JSON.parse(readFileSync(manifest, "utf8")).version).toBe(next);
      expect(run([bin("task-tracking-mcp", upgraded), "--version"], { env: { PATH: path }, cwd: work }).code).toBe(0);
    }, 240_000);

    test("Claude Code registers it with --scope user from one directory and finds it Connected from another", async () => {
      const tracker = await startInstalledTracker(freshDir("home-claude-tracker"));
      const key = readFileSync(tracker.keyFile, "utf8").trim();
      // Claude Code's own home: a temporary one, so the user's configuration is never touched.
      const env = {
        PATH: path,
        HOME: freshDir("home-claude"),
        DISABLE_AUTOUPDATER: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      };
      const server = bin("task-tracking-mcp");
      expect(head("task-tracking-mcp")).toBe(NATIVE_MAGIC); // Claude Code starts the native binary, no launcher
      const added = run(
        [
          claude!,
          "mcp",
          "add",
          "--scope",
          "user",
          "task-tracking",
          "--env",
          `TASK_TRACKING_URL=${tracker.url}`,
          "--env",
          `TASK_TRACKING_API_KEY_FILE=${tracker.keyFile}`,
          "--",
          server,
        ],
        { env, cwd: freshDir("project-one") },
      );
      expect(added.code).toBe(0);
      const listed = run([claude!, "mcp", "list"], { env, cwd: freshDir("project-two") });
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(new RegExp(`^task-tracking: ${server} +- ✔ Connected$`, "m"));
      expect(listed.stdout).not.toContain(key);
      // Connected proves the handshake only; doctor, with what Claude Code was given, proves the key.
      const doctor = run([server, "doctor"], {
        env: { PATH: path, TASK_TRACKING_URL: tracker.url, TASK_TRACKING_API_KEY_FILE: tracker.keyFile },
        cwd: freshDir("project-two-doctor"),
      });
      expect([doctor.code, doctor.stdout.includes("✓ API key accepted")]).toEqual([0, true]);
      expect(await tracker.stop()).toBe(0);
    }, 60_000);
  });
}

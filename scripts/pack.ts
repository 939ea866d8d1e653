/**
 * `bun run pack [--platforms linux-x64,darwin-arm64]`: the npm packages, as tarballs in dist/npm/.
 *
 * The layout esbuild and Biome ship native binaries with: a main package `task-tracking-mcp` whose
 * two commands are small Node.js launchers (npm/launch.js), and one package per platform,
 * `task-tracking-mcp-<platform>`, holding the compiled `task-tracking-mcp` and `task-tracker`. As
 * esbuild's, the main package's postinstall (npm/install.js) puts each native binary in its launcher's
 * place where it can, so the installed command is one process; the launcher is the fallback. The main
 * package lists every platform package as an optional dependency pinned to its own version; npm
 * installs only the one whose os and cpu match, so nothing is downloaded at install time and a registry
 * mirror is enough. The main package is generated here: the root package.json is the development one
 * (private, with dev dependencies).
 */

import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { $ } from "bun";
import packageJson from "../package.json" with { type: "json" };
import { compile, PLATFORMS, type Platform } from "./build.ts";

const ROOT = new URL("..", import.meta.url).pathname;
export const PACK_DIR = join(ROOT, "dist", "npm");
const MAIN_PACKAGE = "task-tracking-mcp";
const COMMANDS = [
  { name: "task-tracking-mcp", entry: "index.ts" },
  { name: "task-tracker", entry: "tracker/main.ts" },
] as const;

/** npm's names for each platform (process.platform, process.arch); linux binaries need glibc. */
const NPM_FIELDS: Record<Platform, { os: string; cpu: string; libc?: string }> = {
  "linux-x64": { os: "linux", cpu: "x64", libc: "glibc" },
  "linux-arm64": { os: "linux", cpu: "arm64", libc: "glibc" },
  "darwin-arm64": { os: "darwin", cpu: "arm64" },
  "darwin-x64": { os: "darwin", cpu: "x64" },
  "windows-x64": { os: "win32", cpu: "x64" },
};

export function platformPackageName(platform: Platform): string {
  return `${MAIN_PACKAGE}-${platform}`;
}

/** This machine's platform, or undefined when no package is built for it. */
export function thisPlatform(): Platform | undefined {
  return PLATFORMS.find((platform) => NPM_FIELDS[platform].os === process.platform && NPM_FIELDS[platform].cpu === process.arch);
}

function executable(command: string, platform: Platform): string {
  return platform === "windows-x64" ? `${command}.exe` : command;
}

function parsePlatforms(argv: string[]): Platform[] {
  const at = argv.findIndex((arg) => arg === "--platforms" || arg.startsWith("--platforms="));
  if (at === -1) return [...PLATFORMS];
  const flag = argv[at]!;
  const value = flag.includes("=") ? flag.slice("--platforms=".length) : argv[at + 1];
  const names = (value ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  if (names.length === 0) throw new Error(`--platforms needs a comma-separated list of ${PLATFORMS.join(", ")}`);
  for (const name of names) {
    if (!(PLATFORMS as readonly string[]).includes(name))
      throw new Error(`--platforms: unknown platform "${name}"; the platforms are ${PLATFORMS.join(", ")}`);
  }
  return names as Platform[];
}

function common(description: string) {
  return { version: packageJson.version, description, license: "MIT", keywords: ["mcp", "claude-code", "task-tracking"] };
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

async function writePlatformPackage(platform: Platform, dir: string): Promise<void> {
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const command of COMMANDS) {
    const binary = join(dir, "bin", executable(command.name, platform));
    await compile(command.entry, binary, platform);
    chmodSync(binary, 0o755);
  }
  writeJson(join(dir, "package.json"), {
    name: platformPackageName(platform),
    ...common(`The ${platform} binaries of ${MAIN_PACKAGE}; install ${MAIN_PACKAGE}, which brings them.`),
    os: [NPM_FIELDS[platform].os],
    cpu: [NPM_FIELDS[platform].cpu],
    ...(NPM_FIELDS[platform].libc ? { libc: [NPM_FIELDS[platform].libc] } : {}),
    files: ["bin/"],
    preferUnplugged: true,
  });
  writeFileSync(
    join(dir, "README.md"),
    `# ${platformPackageName(platform)}\n\nThe ${platform} binaries of [${MAIN_PACKAGE}](https://www.npmjs.com/package/${MAIN_PACKAGE}). Install that package instead: it brings this one.\n`,
  );
  copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
}

function writeMainPackage(dir: string): void {
  mkdirSync(join(dir, "bin"), { recursive: true });
  mkdirSync(join(dir, "lib"), { recursive: true });
  copyFileSync(join(ROOT, "npm", "launch.js"), join(dir, "lib", "launch.js"));
  copyFileSync(join(ROOT, "npm", "install.js"), join(dir, "lib", "install.js"));
  for (const command of COMMANDS) {
    // No .js: the postinstall may put the native binary at this path, which npm's bin link points to.
    const launcher = join(dir, "bin", command.name);
    writeFileSync(
      launcher,
      `#!/usr/bin/env node\n"use strict";\nrequire("../lib/launch.js").launch(${JSON.stringify(command.name)});\n`,
    );
    chmodSync(launcher, 0o755);
  }
  writeJson(join(dir, "package.json"), {
    name: MAIN_PACKAGE,
    ...common(packageJson.description),
    bin: Object.fromEntries(COMMANDS.map((command) => [command.name, `bin/${command.name}`])),
    files: ["bin/", "lib/"],
    scripts: { postinstall: "node lib/install.js" },
    engines: { node: ">=18" },
    optionalDependencies: Object.fromEntries(PLATFORMS.map((platform) => [platformPackageName(platform), packageJson.version])),
  });
  copyFileSync(join(ROOT, "npm", "README.md"), join(dir, "README.md"));
  copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
}

/** `npm pack` of one package directory into PACK_DIR; the tarball's path. */
async function npmPack(dir: string): Promise<string> {
  const output = await $`npm pack --json --pack-destination ${PACK_DIR}`.cwd(dir).quiet();
  const [packed] = JSON.parse(output.stdout.toString()) as [{ filename: string }];
  return join(PACK_DIR, packed.filename);
}

export async function pack(platforms: readonly Platform[]): Promise<string[]> {
  rmSync(PACK_DIR, { recursive: true, force: true });
  const packagesDir = join(PACK_DIR, "packages");
  const mainDir = join(packagesDir, MAIN_PACKAGE);
  writeMainPackage(mainDir);
  const tarballs = [await npmPack(mainDir)];
  for (const platform of platforms) {
    const dir = join(packagesDir, platformPackageName(platform));
    await writePlatformPackage(platform, dir);
    tarballs.push(await npmPack(dir));
  }
  return tarballs;
}

if (import.meta.main) {
  let platforms: Platform[];
  try {
    platforms = parsePlatforms(process.argv.slice(2));
  } catch (error) {
    console.error(`pack: ${(error as Error).message}`);
    process.exit(2);
  }
  for (const tarball of await pack(platforms)) {
    console.log(`packed ${tarball.slice(ROOT.length)} (${(statSync(tarball).size / 1e6).toFixed(1)} MB)`);
  }
}

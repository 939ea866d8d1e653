// `bun tracker/main.ts` as a process: configuration errors, the generated key, signals, and
// durability across kill -9. Each test spawns the tracker in a temporary directory (so no .env or
// bunfig.toml of the repository applies) with a clean environment and port 0.

import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import type { Lines } from "../testkit/lines.ts";
import { TRACKER_MAIN as MAIN } from "../testkit/paths.ts";
import { type ChildProcess, startProcess } from "../testkit/processes.ts";
import { stopEverything } from "../testkit/registry.ts";
import { makeTempDir } from "../testkit/temp.ts";
import { trackerCommand, trackerStarted } from "../testkit/tracker.ts";
import { ConfigError, loadOrCreateLocalApiKey, readConfig } from "./config.ts";
import { userDataDir } from "./data-dir.ts";

const KEY = "process-test-key-0123456789";

afterEach(stopEverything);

function tempDir(): string {
  return makeTempDir("tracker-main-test-");
}

function spawnTracker(env: Record<string, string>, cwd: string): ChildProcess {
  return startProcess(trackerCommand(), {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd, PORT: "0", LOG_LEVEL: "info", ...env },
    stdout: "lines",
    stderr: "lines",
  });
}

/** All of an output, once the process has closed it. */
async function allOf(output: Lines): Promise<string> {
  await output.whenEnded();
  return output.text();
}

function startedUrl(spawned: ChildProcess): Promise<string> {
  return trackerStarted(spawned);
}

/** The exit code of a tracker expected to refuse to start; one that starts fails the test at once, not by a timeout. */
function exitCodeBeforeStart(spawned: ChildProcess): Promise<number | string> {
  return startedUrl(spawned).then(
    () => "started",
    () => spawned.exited,
  );
}

describe("configuration errors stop the start with exit 1 and a sentence naming the variable", () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: "eighty", TRACKER_API_KEYS: KEY }, "PORT must be a port number from 0 to 65535; it is not a whole number."],
    [{ PORT: "70000", TRACKER_API_KEYS: KEY }, "PORT must be a port number from 0 to 65535; it is above 65535."],
    [{ TRACKER_API_KEYS: "short" }, "TRACKER_API_KEYS: every API key must be at least 16 characters long."],
    [{ TRACKER_API_KEYS: `${KEY},tiny` }, "TRACKER_API_KEYS"],
    [{ TRACKER_API_KEYS: "has space in the key 0123" }, "TRACKER_API_KEYS: API keys may hold only visible ASCII"],
    [{ TRACKER_API_KEYS: KEY, TRACKER_SYNC: "sometimes" }, "TRACKER_SYNC must be one of normal, full; it is none of them."],
    [
      { TRACKER_API_KEYS: KEY, TRACKER_CLAIM_TTL: "4" },
      "TRACKER_CLAIM_TTL must be a number of seconds from 5 to 86400; it is below 5.",
    ],
    [{ TRACKER_API_KEYS: KEY, LOG_LEVEL: "loud" }, "LOG_LEVEL must be one of debug, info, warn, error"],
    [{ TRACKER_API_KEYS: KEY, LOG_FORMAT: "bogus" }, "LOG_FORMAT must be one of text, json; it is none of them."],
    [{ TRACKER_API_KEYS: KEY, TRACKER_RESERVATION_TTL: "0" }, "TRACKER_RESERVATION_TTL must be a number of seconds"],
    [{ TRACKER_API_KEYS: KEY, TRACKER_RESERVATION_TTL: "1h" }, "TRACKER_RESERVATION_TTL"],
    [{ TRACKER_API_KEYS: KEY, DATABASE_URL: "mysql://x" }, "DATABASE_URL must be a postgres:// or postgresql:// URL."],
    [{ DATABASE_URL: "postgres://localhost/tracker" }, "TRACKER_API_KEYS must be set when DATABASE_URL is set"],
    [{ TRACKER_DB: ":memory:" }, "set TRACKER_API_KEYS"],
    [{ TRACKER_API_KEYS: KEY, HOST: "no-such-host.invalid" }, "(PORT, HOST): HOST could not be resolved to an address"],
    [{ TRACKER_API_KEYS: KEY, HOST: "local host" }, "HOST must be a host name or an IP address of this machine"],
    [{ TRACKER_API_KEYS: KEY, HOST: "192.0.2.1" }, "(PORT, HOST): HOST 192.0.2.1 is not an address of this machine"],
  ];
  for (const [env, sentence] of cases) {
    test(`${JSON.stringify(env)}`, async () => {
      const dir = tempDir();
      const spawned = spawnTracker({ TRACKER_DB: join(dir, "data", "tracker.db"), ...env }, dir);
      expect(await spawned.exited).toBe(1);
      expect(await allOf(spawned.stderr)).toContain(sentence);
      expect(await allOf(spawned.stdout)).toBe("");
    });
  }
});

describe("a port or a database file the tracker cannot use stops the start with exit 1 and a sentence saying why", () => {
  test("a port that is taken", async () => {
    const occupant = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    try {
      const dir = tempDir();
      const spawned = spawnTracker(
        { TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db"), PORT: String(occupant.port) },
        dir,
      );
      expect(await spawned.exited).toBe(1);
      expect(await allOf(spawned.stderr)).toContain(`The tracker could not listen on 127.0.0.1:${occupant.port} (PORT, HOST)`);
    } finally {
      await occupant.stop(true);
    }
  });

  test("a port another tracker is listening on", async () => {
    const firstDir = tempDir();
    const first = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(firstDir, "tracker.db") }, firstDir);
    const port = new URL(await startedUrl(first)).port;
    const dir = tempDir();
    const second = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db"), PORT: port }, dir);
    expect(await exitCodeBeforeStart(second)).toBe(1);
    expect(await allOf(second.stderr)).toBe(
      `The tracker could not listen on 127.0.0.1:${port} (PORT, HOST): port ${port} is already in use, perhaps by another tracker; stop that one or set PORT to a free port.\n`,
    );
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
  });

  test("a TRACKER_DB that is a directory, or a file that is not a database", async () => {
    const dir = tempDir();
    const textFile = join(dir, "notes.txt");
    writeFileSync(textFile, "not a database\n", { mode: 0o600 });
    const cases: Array<[string, string]> = [
      [dir, `it is a directory; set TRACKER_DB to a file path, such as ${join(dir, "tracker.db")}.`],
      [
        textFile,
        "the file is not a SQLite database; set TRACKER_DB to the tracker's database, or to a new file path to start afresh.",
      ],
    ];
    for (const [dbPath, reason] of cases) {
      const spawned = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: dbPath }, dir);
      expect(await spawned.exited).toBe(1);
      expect(await allOf(spawned.stderr)).toBe(`The tracker could not open its database ${dbPath} (TRACKER_DB): ${reason}\n`);
    }
  });

  test("a second tracker on the same database file", async () => {
    const dir = tempDir();
    const env = { TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db") };
    const first = spawnTracker(env, dir);
    await startedUrl(first);
    const second = spawnTracker(env, dir);
    expect(await second.exited).toBe(1);
    expect(await allOf(second.stderr)).toContain("is in use by another process");
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
  });
});

describe("a value that could be a key pasted into the wrong variable", () => {
  const SECRET = "sk_live_9f8e7d6c5b4a3210ZYXW";
  const variables = [
    "PORT",
    "HOST",
    "TRACKER_RESERVATION_TTL",
    "TRACKER_CLAIM_TTL",
    "TRACKER_SYNC",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DATABASE_URL",
    "DATABASE_POOL_MAX",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_QUERY_TIMEOUT",
  ];
  for (const variable of variables) {
    test(`in ${variable} is refused without being repeated`, () => {
      let message = "";
      try {
        readConfig({ TRACKER_API_KEYS: KEY, DATABASE_URL: "postgres://db/tracker", [variable]: SECRET });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toStartWith(variable);
      expect(message).not.toContain(SECRET);
      expect(message).not.toContain("9f8e7d6c");
    });
  }

  test("in HOST, shaped like a host name that does not resolve, is not repeated either", async () => {
    const dir = tempDir();
    const hexKey = "9f8e7d6c5b4a32109f8e7d6c5b4a3210";
    const spawned = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db"), HOST: hexKey }, dir);
    expect(await spawned.exited).toBe(1);
    await spawned.stderr.whenEnded();
    expect(spawned.stderr.text()).toContain("HOST could not be resolved to an address");
    expect(spawned.stderr.text()).not.toContain(hexKey);
  });
});

describe("TRACKER_CLAIM_TTL", () => {
  test("is the lease of a claim that asks for none, and the start line names the board", async () => {
    expect(readConfig({ HOME: "/home/ada" }).claimTtlSeconds).toBe(1800);
    const dir = tempDir();
    const spawned = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db"), TRACKER_CLAIM_TTL: "100" }, dir);
    const started = await spawned.stderr.waitForLog("tracker started");
    expect(started.board).toBe(`${started.url}/`);
    const headers = { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" };
    const tasks = [{ task_id: "T-1", project_id: "p", description: "Lease me" }];
    expect((await fetch(`${started.url}/tasks/batch`, { method: "POST", headers, body: JSON.stringify({ tasks }) })).status).toBe(
      201,
    );
    const claimedAt = Date.now();
    const claim = await fetch(`${started.url}/tasks/T-1/status`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ status: "in_progress" }),
    });
    const task = ((await claim.json()) as { updated_task: { lease_expires_at: string } }).updated_task;
    expect(Math.abs(Date.parse(task.lease_expires_at) - claimedAt - 100_000)).toBeLessThan(5_000);
    spawned.kill("SIGTERM");
    expect(await spawned.exited).toBe(0);
  });
});

describe("LOG_FORMAT: a person's terminal gets a start-up block and then warnings only", () => {
  /** The text form's tracker, once its start-up block is out; LOG_LEVEL unset: the default, info. */
  async function startTextTracker(env: Record<string, string>, dir: string): Promise<{ spawned: ChildProcess; url: string }> {
    const spawned = spawnTracker({ LOG_FORMAT: "text", LOG_LEVEL: "", ...env }, dir);
    const exited = spawned.exited.then(async (code) => {
      throw new Error(`the tracker exited with code ${code}: ${await allOf(spawned.stderr)}`);
    });
    const board = await Promise.race([spawned.stderr.waitFor((line) => line.includes("Board:"), "the board's address"), exited]);
    await spawned.stderr.waitFor((line) => line.startsWith("From here on"), "the end of the start-up block");
    return { spawned, url: board.match(/http:\/\/127\.0\.0\.1:\d+/)![0] };
  }

  test("names the board, the database, the key file and the claude mcp add line, never the key; requests add no line", async () => {
    const dir = tempDir();
    const { spawned, url } = await startTextTracker({}, dir);
    const dataDir = join(dir, ".local", "share", "task-tracking");
    const keyPath = join(dataDir, "api-key");
    const key = readFileSync(keyPath, "utf8").trim();
    const block = spawned.stderr.text();
    expect(block).toStartWith(`task-tracker ${packageJson.version} is running.\n\n`);
    expect(block).toContain(`  Board:     ${url}/\n`);
    expect(block).toContain(`  Database:  ${join(dataDir, "tracker.db")}\n`);
    expect(block).toContain(`  API key:   ${keyPath} (generated just now, readable only by you)\n`);
    expect(block).toContain(`             the board asks for it: cat ${keyPath}\n`);
    expect(block).toContain(
      `  claude mcp add --scope user task-tracking \\\n    --env TASK_TRACKING_URL=${url} \\\n    --env TASK_TRACKING_API_KEY_FILE=${keyPath} \\\n`,
    );
    expect(block).toContain("Ctrl-C stops it.\n");
    for (let request = 0; request < 5; request++) {
      const answer = await fetch(`${url}/tasks/next?project=p`, { headers: { Authorization: `Bearer ${key}` } });
      expect(answer.status).toBe(200);
    }
    expect((await fetch(`${url}/tasks/next?project=p`)).status).toBe(401);
    spawned.kill("SIGTERM");
    expect(await spawned.exited).toBe(0);
    const output = await allOf(spawned.stderr);
    expect(output.slice(block.length).split("\n")).toEqual([
      expect.stringMatching(/^\d\d:\d\d:\d\d info: tracker stopping \(signal=SIGTERM\)$/),
      expect.stringMatching(/^\d\d:\d\d:\d\d info: tracker stopped$/),
      "",
    ]);
    expect(output).not.toContain(key);
    expect(output).not.toContain("{");
    expect(await allOf(spawned.stdout)).toBe("");
  });

  test("says where TRACKER_API_KEYS' keys come from without repeating them", async () => {
    const dir = tempDir();
    const { spawned } = await startTextTracker({ TRACKER_API_KEYS: `${KEY},${KEY}-second`, TRACKER_DB: join(dir, "t.db") }, dir);
    const block = spawned.stderr.text();
    expect(block).toContain(`  Database:  ${join(dir, "t.db")}\n`);
    expect(block).toContain("  API key:   keys from TRACKER_API_KEYS (2 keys)\n");
    expect(block).toContain(`--env TASK_TRACKING_API_KEY_FILE='<a file holding one of the keys>' \\\n`);
    expect(block).not.toContain(KEY);
    spawned.kill("SIGINT");
    expect(await spawned.exited).toBe(0);
  });

  test("a warning is one plain line", async () => {
    const dir = tempDir();
    const { spawned, url } = await startTextTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "t.db") }, dir);
    const closed = "closed a live stream whose client reads too slowly";
    const socket = await new Promise<ReturnType<typeof connect>>((resolve) => {
      const opened = connect(Number(new URL(url).port), "127.0.0.1", () => resolve(opened));
    });
    socket.write(`GET /events HTTP/1.1\r\nHost: tracker\r\nAuthorization: Bearer ${KEY}\r\n\r\n`);
    socket.pause();
    const headers = { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" };
    // About 0.9 MB of events a batch; the socket's own buffers take a few before the stream fills.
    for (let batch = 0; batch < 100 && !spawned.stderr.text().includes(closed); batch++) {
      const tasks = Array.from({ length: 100 }, (_, i) => ({
        task_id: `B${batch}-${i}`,
        project_id: "p",
        description: "x".repeat(9000),
      }));
      const answer = await fetch(`${url}/tasks/batch`, { method: "POST", headers, body: JSON.stringify({ tasks }) });
      expect(answer.status).toBe(201);
    }
    const warning = await spawned.stderr.waitFor((line) => line.includes(closed), "the warning");
    expect(warning).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d warning: ${closed}$`));
    socket.destroy();
    spawned.kill("SIGTERM");
    expect(await spawned.exited).toBe(0);
  });

  test("without a terminal or with LOG_FORMAT=json, the output stays JSON lines", async () => {
    for (const format of ["", "json"]) {
      const dir = tempDir();
      const spawned = spawnTracker({ LOG_FORMAT: format }, dir);
      const url = await startedUrl(spawned);
      const key = readFileSync(join(dir, ".local", "share", "task-tracking", "api-key"), "utf8").trim();
      expect((await fetch(`${url}/tasks/next?project=p`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
      await spawned.stderr.waitForLog("request");
      spawned.kill("SIGTERM");
      expect(await spawned.exited).toBe(0);
      const [keyLine, ...logLines] = (await allOf(spawned.stderr)).trimEnd().split("\n");
      expect(keyLine).toStartWith("TRACKER_API_KEYS is not set: generated an API key in ");
      expect(logLines.map((line) => JSON.parse(line).msg)).toEqual([
        "tracker started",
        "request",
        "tracker stopping",
        "tracker stopped",
      ]);
    }
  });
});

describe("the tracker without TRACKER_API_KEYS", () => {
  test("generates a key file (mode 0600) once, never prints the key, and reuses it", async () => {
    const dir = tempDir();
    const first = spawnTracker({}, dir);
    const url = await startedUrl(first);
    const keyPath = join(dir, ".local", "share", "task-tracking", "api-key");
    const key = readFileSync(keyPath, "utf8").trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(first.stderr.text()).toContain(`export TASK_TRACKING_API_KEY="$(cat ${keyPath})"`);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const authorized = await fetch(`${url}/tasks/next?project=p`, { headers: { Authorization: `Bearer ${key}` } });
    expect(authorized.status).toBe(200);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(await allOf(first.stderr)).not.toContain(key);
    expect(await allOf(first.stdout)).toBe("");

    const second = spawnTracker({}, dir);
    await startedUrl(second);
    expect(second.stderr.text()).toContain(`using the API key in ${keyPath}`);
    expect(readFileSync(keyPath, "utf8").trim()).toBe(key);
    second.kill("SIGINT");
    expect(await second.exited).toBe(0);
    expect(await allOf(second.stderr)).not.toContain(key);
  });
});

describe("one tracker per user: its data live in the user's data directory", () => {
  test("the same database and key from any working directory, said at start", async () => {
    const home = tempDir();
    const dataDir = join(home, ".local", "share", "task-tracking");
    const first = spawnTracker({ HOME: home }, tempDir());
    expect((await first.stderr.waitForLog("tracker started")).storage).toBe(`sqlite:${join(dataDir, "tracker.db")}`);
    expect(first.stderr.text()).toContain(`generated an API key in ${join(dataDir, "api-key")}`);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    const second = spawnTracker({ HOME: home }, tempDir());
    expect((await second.stderr.waitForLog("tracker started")).storage).toBe(`sqlite:${join(dataDir, "tracker.db")}`);
    expect(second.stderr.text()).toContain(`using the API key in ${join(dataDir, "api-key")}`);
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(readdirSync(dataDir).sort()).toEqual(["api-key", "tracker.db"]);
  });

  test("XDG_DATA_HOME moves it; TRACKER_DB still overrides", async () => {
    const home = tempDir();
    const xdg = tempDir();
    const moved = spawnTracker({ HOME: home, XDG_DATA_HOME: xdg, TRACKER_API_KEYS: KEY }, tempDir());
    expect((await moved.stderr.waitForLog("tracker started")).storage).toBe(`sqlite:${join(xdg, "task-tracking", "tracker.db")}`);
    moved.kill("SIGTERM");
    expect(await moved.exited).toBe(0);

    const dbPath = join(tempDir(), "elsewhere.db");
    const overridden = spawnTracker({ HOME: home, XDG_DATA_HOME: xdg, TRACKER_DB: dbPath, TRACKER_API_KEYS: KEY }, tempDir());
    expect((await overridden.stderr.waitForLog("tracker started")).storage).toBe(`sqlite:${dbPath}`);
    overridden.kill("SIGTERM");
    expect(await overridden.exited).toBe(0);
    expect(existsSync(join(home, ".local"))).toBe(false);
  });

  test("with neither HOME nor XDG_DATA_HOME nor TRACKER_DB it refuses to start, saying what to set", async () => {
    const spawned = spawnTracker({ HOME: "", TRACKER_API_KEYS: KEY }, tempDir());
    expect(await exitCodeBeforeStart(spawned)).toBe(1);
    await spawned.stderr.whenEnded();
    expect(spawned.stderr.text()).toBe(
      "TRACKER_DB is not set and neither XDG_DATA_HOME nor HOME is set, so the tracker has no data directory to keep its database in; set TRACKER_DB.\n",
    );
  });

  test("the data directory of each platform", () => {
    const env = { HOME: "/home/ada", XDG_DATA_HOME: "/data/ada", LOCALAPPDATA: "C:\\Users\\ada\\AppData\\Local" };
    expect({
      linux: userDataDir(env, "linux"),
      "linux, XDG_DATA_HOME unset": userDataDir({ HOME: "/home/ada" }, "linux"),
      "linux, XDG_DATA_HOME relative (ignored, as the spec says)": userDataDir(
        { HOME: "/home/ada", XDG_DATA_HOME: "data" },
        "linux",
      ),
      freebsd: userDataDir({ HOME: "/home/ada" }, "freebsd"),
      darwin: userDataDir(env, "darwin"),
      win32: userDataDir(env, "win32"),
      "win32, LOCALAPPDATA unset": userDataDir({ HOME: "/home/ada" }, "win32"),
    }).toEqual({
      linux: "/data/ada/task-tracking",
      "linux, XDG_DATA_HOME unset": "/home/ada/.local/share/task-tracking",
      "linux, XDG_DATA_HOME relative (ignored, as the spec says)": "/home/ada/.local/share/task-tracking",
      freebsd: "/home/ada/.local/share/task-tracking",
      darwin: "/home/ada/Library/Application Support/task-tracking",
      win32: "C:\\Users\\ada\\AppData\\Local\\task-tracking",
      "win32, LOCALAPPDATA unset": undefined,
    });
    expect(readConfig(env, "win32").dbPath).toBe("C:\\Users\\ada\\AppData\\Local\\task-tracking\\tracker.db");
    expect(() => readConfig({ HOME: "/home/ada" }, "win32")).toThrow(
      "TRACKER_DB is not set and LOCALAPPDATA is not set, so the tracker has no data directory to keep its database in; set TRACKER_DB.",
    );
  });
});

describe("task-tracker paths", () => {
  /** `paths` ends by itself: run to the end, with the same clean environment as spawnTracker. */
  function paths(env: Record<string, string>): { code: number; stdout: string; stderr: string } {
    const result = Bun.spawnSync([process.execPath, MAIN, "paths"], {
      cwd: tempDir(),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdin: "ignore",
    });
    return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
  }

  test("prints the data directory, the database and the key file, and creates nothing", () => {
    const home = tempDir();
    const dataDir = join(home, ".local", "share", "task-tracking");
    expect(paths({ HOME: home })).toEqual({
      code: 0,
      stdout: `data directory: ${dataDir}\ndatabase:       ${join(dataDir, "tracker.db")}\nAPI key file:   ${join(dataDir, "api-key")}\n`,
      stderr: "",
    });
    expect(existsSync(dataDir)).toBe(false);
  });

  test("follows XDG_DATA_HOME and TRACKER_DB, and says when no key file is used", () => {
    const xdg = tempDir();
    const dbDir = tempDir();
    expect([
      paths({ HOME: "/nonexistent", XDG_DATA_HOME: xdg }).stdout,
      paths({ HOME: "/nonexistent", TRACKER_DB: join(dbDir, "team.db") }).stdout,
      paths({ HOME: "/nonexistent", TRACKER_API_KEYS: KEY }).stdout,
      paths({ TRACKER_DB: ":memory:", TRACKER_API_KEYS: KEY }).stdout,
      paths({ HOME: "/nonexistent", DATABASE_URL: "postgres://tracker:s3cret@db.example/tracker", TRACKER_API_KEYS: KEY }).stdout,
    ]).toEqual([
      `data directory: ${xdg}/task-tracking\ndatabase:       ${xdg}/task-tracking/tracker.db\nAPI key file:   ${xdg}/task-tracking/api-key\n`,
      `data directory: /nonexistent/.local/share/task-tracking\ndatabase:       ${dbDir}/team.db\nAPI key file:   ${dbDir}/api-key\n`,
      "data directory: /nonexistent/.local/share/task-tracking\ndatabase:       /nonexistent/.local/share/task-tracking/tracker.db\nAPI key file:   none: the keys come from TRACKER_API_KEYS\n",
      "data directory: none (its variables are not set)\ndatabase:       :memory: (TRACKER_DB; nothing is kept)\nAPI key file:   none: the keys come from TRACKER_API_KEYS\n",
      "data directory: /nonexistent/.local/share/task-tracking\ndatabase:       postgres://tracker:***@db.example/tracker (DATABASE_URL)\nAPI key file:   none: the keys come from TRACKER_API_KEYS\n",
    ]);
  });

  test("a bad configuration, or an unknown argument, is one sentence on stderr and a non-zero exit", () => {
    expect(paths({ HOME: "/nonexistent", PORT: "eighty" })).toEqual({
      code: 1,
      stdout: "",
      stderr: "PORT must be a port number from 0 to 65535; it is not a whole number.\n",
    });
    const result = Bun.spawnSync([process.execPath, MAIN, "serve"], {
      cwd: tempDir(),
      env: { PATH: process.env.PATH ?? "" },
      stdin: "ignore",
    });
    expect([result.exitCode, result.stdout.toString(), result.stderr.toString()]).toEqual([
      2,
      "",
      'task-tracker: unknown argument "serve"; it takes none (serve), paths, backup, dump, restore or keys\n',
    ]);
  });
});

describe("a key file someone else could have written or can read", () => {
  test("is refused when others may read or write it, naming the file and the fix", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "data"));
    const keyPath = join(dir, "data", "api-key");
    writeFileSync(keyPath, "planted-key-0123456789abcdef\n");
    for (const mode of [0o644, 0o620, 0o602]) {
      chmodSync(keyPath, mode);
      const spawned = spawnTracker({ TRACKER_DB: "data/tracker.db" }, dir);
      expect(await exitCodeBeforeStart(spawned)).toBe(1);
      expect(await allOf(spawned.stderr)).toBe(
        `The API key file data/api-key can be read or written by other users (mode ${mode.toString(8)}); if you trust the key in it, run: chmod 600 data/api-key; otherwise remove it to have a new key generated.\n`,
      );
    }
  });

  test("is refused when it belongs to another user", () => {
    const dir = tempDir();
    const keyPath = join(dir, "api-key");
    writeFileSync(keyPath, "planted-key-0123456789abcdef\n", { mode: 0o600 });
    const owner = statSync(keyPath).uid;
    // This user stands in for the tracker's; the file's real owner for the one who planted it.
    expect(() => loadOrCreateLocalApiKey(join(dir, "tracker.db"), owner + 1)).toThrow(
      `The API key file ${keyPath} belongs to user ${owner}, not to this user (${owner + 1}), so someone else may know the key; remove it to have a new key generated, or set TRACKER_API_KEYS.`,
    );
    expect(loadOrCreateLocalApiKey(join(dir, "tracker.db"), owner)).toEqual({
      key: "planted-key-0123456789abcdef",
      path: keyPath,
      created: false,
    });
  });
});

describe("the database file gets the key file's checks", () => {
  test("an existing database file (or -wal) others may read or write is refused, naming the file and the fix", async () => {
    const dir = tempDir();
    const dbPath = join(dir, "tracker.db");
    const first = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: dbPath }, dir);
    await startedUrl(first);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(statSync(dbPath).mode & 0o777).toBe(0o600);
    for (const [path, title] of [
      [dbPath, "The database file"],
      [`${dbPath}-wal`, "The database's -wal file"],
    ] as const) {
      writeFileSync(`${dbPath}-wal`, "", { flag: "a", mode: 0o600 });
      chmodSync(path, 0o666);
      const spawned = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: dbPath }, dir);
      expect(await exitCodeBeforeStart(spawned)).toBe(1);
      expect(await allOf(spawned.stderr)).toBe(
        `${title} ${path} (TRACKER_DB) can be read or written by other users (mode 666); if no one else should, run: chmod 600 ${path}\n`,
      );
      expect(statSync(path).mode & 0o777).toBe(0o666);
      chmodSync(path, 0o600);
    }
  });

  test("a symbolic link at TRACKER_DB, dangling or not, is refused and nothing is created where it points", async () => {
    const dir = tempDir();
    const target = join(dir, "elsewhere", "target.db");
    mkdirSync(join(dir, "elsewhere"));
    const link = join(dir, "tracker.db");
    symlinkSync(target, link);
    const sentence = `The database file ${link} (TRACKER_DB) is a symbolic link; set TRACKER_DB to the file itself, so that the database cannot be sent elsewhere.\n`;
    const dangling = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: link }, dir);
    expect(await exitCodeBeforeStart(dangling)).toBe(1);
    expect(await allOf(dangling.stderr)).toBe(sentence);
    expect(existsSync(target)).toBe(false);

    writeFileSync(target, "", { mode: 0o600 });
    const pointing = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: link }, dir);
    expect(await exitCodeBeforeStart(pointing)).toBe(1);
    expect(await allOf(pointing.stderr)).toBe(sentence);
    expect(readFileSync(target, "utf8")).toBe("");
  });

  test("the data directory is made 0700 and the files 0600 even under umask 000, with keys or a key file", async () => {
    const dataDir = ".local/share/task-tracking";
    for (const [keys, files] of [
      [{ TRACKER_API_KEYS: KEY }, ["tracker.db"]],
      [{}, ["api-key", "tracker.db"]],
    ] as const) {
      const home = tempDir();
      const spawned = startProcess(["/bin/sh", "-c", 'umask 000 && exec "$0" "$@"', ...trackerCommand()], {
        cwd: home,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, PORT: "0", LOG_LEVEL: "info", ...keys },
        stdout: "lines",
        stderr: "lines",
      });
      await startedUrl(spawned);
      spawned.kill("SIGTERM");
      expect(await spawned.exited).toBe(0);
      const modeOf = (path: string) => (statSync(join(home, path)).mode & 0o777).toString(8);
      expect([".local", ".local/share", dataDir].map(modeOf)).toEqual(["700", "700", "700"]);
      expect(files.map((file) => modeOf(`${dataDir}/${file}`))).toEqual(files.map(() => "600"));
    }
  });
});

describe("signals", () => {
  test("SIGTERM finishes the request in flight, then exits 0", async () => {
    const dir = tempDir();
    const spawned = spawnTracker({ TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db"), LOG_LEVEL: "debug" }, dir);
    const url = await startedUrl(spawned);
    // A request whose body is still arriving when SIGTERM comes.
    let sendRest: () => void = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"type": "US", "count": 2, '));
        sendRest = () => {
          controller.enqueue(new TextEncoder().encode('"project_id": "p"}'));
          controller.close();
        };
      },
    });
    const inFlight = fetch(`${url}/ids/reserve`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body });
    await spawned.stderr.waitForLog("request started");
    spawned.kill("SIGTERM");
    await spawned.stderr.waitForLog("tracker stopping");
    sendRest();
    const response = await inFlight;
    expect(response.status).toBe(201);
    expect(((await response.json()) as { reserved_ids: string[] }).reserved_ids).toEqual(["US-001", "US-002"]);
    expect(await spawned.exited).toBe(0);
    await spawned.stderr.waitForLog("tracker stopped");
    expect(await allOf(spawned.stdout)).toBe("");
  });
});

describe("crashes", () => {
  test("kill -9 under a stream of allocations loses no acknowledged ID and reissues none", async () => {
    const dir = tempDir();
    const env = { TRACKER_API_KEYS: KEY, TRACKER_DB: join(dir, "tracker.db") };
    const first = spawnTracker(env, dir);
    const url = await startedUrl(first);

    const acknowledged = new Map<string, number>(); // Idempotency-Key -> number
    let killed = false;
    let attempt = 0;
    const client = async () => {
      for (;;) {
        const key = `alloc-${attempt++}`;
        let response: Response;
        try {
          response = await fetch(`${url}/ids/next?type=US&project=crash`, {
            headers: { Authorization: `Bearer ${KEY}`, "Idempotency-Key": key },
          });
        } catch {
          return; // the tracker is gone
        }
        const body = (await response.json().catch(() => null)) as { number: number } | null;
        if (response.status !== 200 || body === null) return;
        acknowledged.set(key, body.number);
        if (acknowledged.size >= 400 && !killed) {
          killed = true;
          first.kill("SIGKILL");
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    await first.exited;
    expect(first.signalCode).toBe("SIGKILL");
    const numbers = [...acknowledged.values()];
    expect(new Set(numbers).size).toBe(numbers.length);

    const second = spawnTracker(env, dir);
    const restartedUrl = await startedUrl(second);
    const headers = { Authorization: `Bearer ${KEY}` };
    // Every acknowledged allocation is still there: its stored response replays.
    for (const [key, number] of acknowledged) {
      const replay = await fetch(`${restartedUrl}/ids/next?type=US&project=crash`, {
        headers: { ...headers, "Idempotency-Key": key },
      });
      expect([
        replay.status,
        replay.headers.get("idempotent-replayed"),
        ((await replay.json()) as { number: number }).number,
      ]).toEqual([200, "true", number]);
    }
    // And never reissued: the next number is above every acknowledged one.
    const next = await fetch(`${restartedUrl}/ids/next?type=US&project=crash`, { headers });
    expect(((await next.json()) as { number: number }).number).toBeGreaterThan(Math.max(...numbers));
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});

// What only the PostgreSQL storage has: several storages (instances) on one database, schema
// versioning under concurrent start-ups, and recovery from a database that goes away. Runs in the
// PostgreSQL target of the suite (TRACKER_TEST_STORAGE=postgres, see postgres-target.test.ts).
//
// A lost database is played by a TCP proxy between the tracker and PostgreSQL: `cut` drops every
// connection and refuses new ones (a stopped server), `blackhole` keeps connections open and
// swallows every byte (a network that silently stopped delivering).

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { SQL, type Socket, type TCPSocketListener } from "bun";
import { readConfig } from "../config.ts";
import { openPostgresStorage, redactDatabaseUrl, type PostgresStorage } from "./postgres.ts";
import { startTracker, type RunningTracker } from "../http/server.ts";
import { makePostgresSchema, type PostgresTestSchema } from "../testing.ts";
import { runProcess } from "../../testkit/processes.ts";
import { trackerCommand } from "../../testkit/tracker.ts";

const onPostgres = process.env.TRACKER_TEST_STORAGE === "postgres";
const now = new Date("2026-11-24T21:46:59.123Z");
const API_KEY = "postgres-test-key-0123456789";

test("a database URL is logged without its password", () => {
  expect(redactDatabaseUrl("postgres://tracker:s3cret@db.example:5432/tracker?sslmode=require")).toBe(
    "postgres://tracker:***@db.example:5432/tracker?sslmode=require",
  );
  expect(redactDatabaseUrl("postgres://db.example/tracker")).toBe("postgres://db.example/tracker");
});

test("the PostgreSQL settings are read and checked like the others", () => {
  expect(readConfig({ DATABASE_URL: "postgres://tracker:s3cret@db.example/tracker" })).toMatchObject({
    databaseUrl: "postgres://tracker:s3cret@db.example/tracker",
    databasePoolMax: 10,
    databaseConnectTimeoutSeconds: 5,
    databaseQueryTimeoutSeconds: 10,
  });
  expect(
    readConfig({ DATABASE_POOL_MAX: "25", DATABASE_CONNECT_TIMEOUT: "2", DATABASE_QUERY_TIMEOUT: "30" }),
  ).toMatchObject({
    databaseUrl: null,
    databasePoolMax: 25,
    databaseConnectTimeoutSeconds: 2,
    databaseQueryTimeoutSeconds: 30,
  });
  expect(() => readConfig({ DATABASE_POOL_MAX: "0" })).toThrow(
    'DATABASE_POOL_MAX must be a number of connections from 1 to 1000, not "0".',
  );
  expect(() => readConfig({ DATABASE_CONNECT_TIMEOUT: "soon" })).toThrow(
    'DATABASE_CONNECT_TIMEOUT must be a number of seconds from 1 to 600, not "soon".',
  );
  expect(() => readConfig({ DATABASE_QUERY_TIMEOUT: "1.5" })).toThrow(
    "DATABASE_QUERY_TIMEOUT must be a number of seconds",
  );
  // The sentences never repeat the URL: it may hold a password.
  expect(() => readConfig({ DATABASE_URL: "mysql://tracker:s3cret@db.example/tracker" })).toThrow(
    "DATABASE_URL must be a postgres:// or postgresql:// URL.",
  );
  const unparsable = () => readConfig({ DATABASE_URL: "postgres://tracker:s3cret@[db.example/tracker" });
  expect(unparsable).toThrow("DATABASE_URL is not a valid URL");
  expect(unparsable).not.toThrow("s3cret");
});

test("a tracker that cannot reach its database stops with a sentence, never with the password", async () => {
  const { code, stdout, stderr } = await runProcess(trackerCommand(), {
    // Port 1 on loopback: nothing listens there.
    env: {
      ...process.env,
      DATABASE_URL: "postgres://tracker:s3cret-pw@127.0.0.1:1/tracker",
      TRACKER_API_KEYS: API_KEY,
    },
  });
  expect({ code, stdout }).toEqual({ code: 1, stdout: "" });
  expect(stderr).toStartWith("The tracker could not open its database: The database is unavailable");
  expect(stderr).not.toContain("s3cret-pw");
});

// Registered only in the PostgreSQL run; the SQLite run says loudly that it skipped that one.
if (onPostgres)
  describe("PostgreSQL storage", () => {
    let schema: PostgresTestSchema;
    const opened: PostgresStorage[] = [];

    async function open(url = schema.url, options: { queryTimeoutMs?: number } = {}): Promise<PostgresStorage> {
      const storage = await openPostgresStorage({ url, connectTimeoutMs: 1000, ...options });
      opened.push(storage);
      return storage;
    }

    beforeEach(async () => {
      schema = await makePostgresSchema();
    });
    afterEach(async () => {
      for (const storage of opened.splice(0)) await storage.close();
      await schema.drop();
    });

    test("startTracker opens PostgreSQL from a URL, and closes it on stop", async () => {
      const tracker = await startTracker({ databaseUrl: schema.url, apiKeys: [API_KEY], port: 0, logSink: () => {} });
      const response = await fetch(`${tracker.url}/ids/next?type=US&project=p`, {
        headers: { Authorization: `Bearer ${API_KEY}` },
      });
      expect(await response.json()).toEqual({ next_id: "US-001", artifact_type: "US", project_id: "p", number: 1 });
      await tracker.stop();
      expect(tracker.storage.ping()).rejects.toThrow("The PostgreSQL storage is closed.");
    });

    test("instances starting at once apply the schema once", async () => {
      const storages = await Promise.all([open(), open(), open()]);
      await storages[0]!.addTasks(
        [
          {
            task_id: "T-1",
            project_id: "p",
            description: "d",
            inputs: [],
            outputs: [],
            priority: "low",
            depends_on: [],
          },
        ],
        now,
      );
      expect((await storages[2]!.getTask("T-1"))?.priority).toBe("low");
      const admin = new SQL(schema.url, { max: 1 });
      expect(await admin`SELECT version FROM tracker_schema`).toEqual([{ version: 1 }]);
      await admin`UPDATE tracker_schema SET version = 99`;
      await admin.close();
      expect(open()).rejects.toThrow(
        "The database has schema version 99, newer than this service knows (1); run a newer tracker.",
      );
    });

    test("an Idempotency-Key in flight on one instance is seen by another", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const request = { scope: "s", key: "k", fingerprint: "f", now, leaseMs: 60_000, retentionMs: 86_400_000 };
      const outcome = await first.claimIdempotencyKey(request);
      if (outcome.outcome !== "claimed") throw new Error(`expected a claim, got ${outcome.outcome}`);
      expect(await second.claimIdempotencyKey(request)).toEqual({ outcome: "in_flight" });
      await first.allocateId("p", "US", {
        claim: outcome.claim,
        respond: (n) => ({ status: 200, body: `{"n":${n}}` }),
      });
      expect(await second.claimIdempotencyKey(request)).toEqual({
        outcome: "replay",
        response: { status: 200, body: '{"n":1}' },
      });
    });

    test("concurrent claims of one task on two instances have one winner", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const tasks = Array.from({ length: 20 }, (_, i) => ({
        task_id: `T-${i}`,
        project_id: "p",
        description: "d",
        inputs: [],
        outputs: [],
        priority: "medium" as const,
        depends_on: [],
      }));
      await first.addTasks(tasks, now);
      const attempts = tasks.flatMap((task) =>
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? first : second)
            .changeTaskStatus({
              taskId: task.task_id,
              to: "in_progress",
              completionNotes: "",
              agentId: `agent-${i}`,
              now,
            })
            .then(
              () => "won",
              (error: { code?: string }) => error.code,
            ),
        ),
      );
      const results = await Promise.all(attempts);
      expect(results.filter((result) => result === "won").length).toBe(tasks.length);
      expect(new Set(results.filter((result) => result !== "won"))).toEqual(new Set(["invalid_transition"]));
    });

    test("completing dependencies while batches that name them are added loses no dependent", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const base = { project_id: "p", description: "d", inputs: [], outputs: [], priority: "medium" as const };
      const dependencies = Array.from({ length: 30 }, (_, i) => ({ ...base, task_id: `D-${i}`, depends_on: [] }));
      await first.addTasks(dependencies, now);
      for (const task of dependencies) {
        await first.changeTaskStatus({
          taskId: task.task_id,
          to: "in_progress",
          completionNotes: "",
          agentId: null,
          now,
        });
      }
      // Each dependent is added while its dependency completes on the other instance.
      await Promise.all(
        dependencies.flatMap((task, i) => [
          second.addTasks([{ ...base, task_id: `W-${i}`, depends_on: [task.task_id] }], now),
          first.changeTaskStatus({ taskId: task.task_id, to: "completed", completionNotes: "", agentId: null, now }),
        ]),
      );
      for (let i = 0; i < dependencies.length; i++) {
        const claimed = await second.changeTaskStatus({
          taskId: `W-${i}`,
          to: "in_progress",
          completionNotes: "",
          agentId: null,
          now,
        });
        expect(claimed.status).toBe("in_progress");
      }
    });

    describe("when the database goes away", () => {
      let proxy: TcpProxy;
      let tracker: RunningTracker;

      async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
        const response = await fetch(`${tracker.url}${path}`, { headers: { Authorization: `Bearer ${API_KEY}` } });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      }

      /** Polls /healthz until it answers 200; returns how long that took. */
      async function msUntilHealthy(limitMs: number): Promise<number> {
        const started = performance.now();
        while (performance.now() - started < limitMs) {
          if ((await get("/healthz")).status === 200) return performance.now() - started;
          await Bun.sleep(50);
        }
        throw new Error(`/healthz was not 200 within ${limitMs} ms`);
      }

      beforeEach(async () => {
        const database = new URL(schema.url);
        proxy = new TcpProxy(database.hostname, Number(database.port || 5432));
        await proxy.listen();
        const viaProxy = new URL(schema.url);
        viaProxy.port = String(proxy.port);
        const storage = await open(viaProxy.toString(), { queryTimeoutMs: 1000 });
        tracker = await startTracker({ storage, apiKeys: [API_KEY], port: 0, logSink: () => {} });
      });
      afterEach(async () => {
        await tracker.stop();
        proxy.close();
      });

      test("a stopped server gives quick 503s, and the service recovers by itself", async () => {
        expect((await get("/healthz")).status).toBe(200);
        expect((await get("/ids/next?type=US&project=p")).status).toBe(200);

        proxy.cut();
        const started = performance.now();
        expect(await get("/healthz")).toEqual({
          status: 503,
          body: { error: "The database is unreachable", code: "unavailable" },
        });
        const allocation = await get("/ids/next?type=US&project=p");
        expect(allocation.status).toBe(503);
        expect(allocation.body.code).toBe("unavailable");
        expect(allocation.body.error).toMatch(/^The database is unavailable \(.+\); retry later$/);
        expect(performance.now() - started).toBeLessThan(1000);

        await proxy.listen();
        const recoveryMs = await msUntilHealthy(5000);
        console.info(`healthy again ${recoveryMs.toFixed(0)} ms after the database came back`);
        expect(await get("/ids/next?type=US&project=p")).toEqual({
          status: 200,
          body: { next_id: "US-002", artifact_type: "US", project_id: "p", number: 2 },
        });
      });

      test("a database that stops answering gives 503s within the query timeout, never a hang", async () => {
        expect((await get("/ids/next?type=US&project=p")).status).toBe(200);

        proxy.blackhole();
        const started = performance.now();
        const [health, allocation] = await Promise.all([get("/healthz"), get("/ids/next?type=US&project=p")]);
        expect(health.status).toBe(503);
        expect(allocation).toEqual({
          status: 503,
          body: { error: "The database did not answer within 1000 ms; retry later", code: "unavailable" },
        });
        expect(performance.now() - started).toBeLessThan(3000);

        proxy.forward();
        const recoveryMs = await msUntilHealthy(10_000);
        console.info(`healthy again ${recoveryMs.toFixed(0)} ms after the network came back`);
        // The allocation that timed out never ran (its bytes were swallowed), so no number is lost.
        expect((await get("/ids/next?type=US&project=p")).body).toMatchObject({ next_id: "US-002" });
      });
    });
  });

// ---------------------------------------------------------------------------

interface Pipe {
  client: Socket<Pipe>;
  upstream: Socket<undefined> | null;
  /** Bytes from the client that arrived before the upstream connection was open. */
  early: Uint8Array[];
}

/** A TCP proxy to PostgreSQL that a test can cut, silence and restore. */
class TcpProxy {
  port = 0;
  private listener: TCPSocketListener<Pipe> | null = null;
  private readonly pipes = new Set<Pipe>();
  private silent = false;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening (again, on the same port after a cut). */
  async listen(): Promise<void> {
    this.silent = false;
    const proxy = this;
    this.listener = Bun.listen<Pipe>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          const pipe: Pipe = { client, upstream: null, early: [] };
          client.data = pipe;
          proxy.pipes.add(pipe);
          Bun.connect<undefined>({
            hostname: proxy.targetHost,
            port: proxy.targetPort,
            socket: {
              data(_upstream, chunk) {
                if (!proxy.silent) pipe.client.write(chunk);
              },
              close() {
                pipe.client.end();
              },
              error() {
                pipe.client.end();
              },
            },
          }).then(
            (upstream) => {
              pipe.upstream = upstream;
              for (const chunk of pipe.early.splice(0)) upstream.write(chunk);
            },
            () => client.end(),
          );
        },
        data(client, chunk) {
          if (proxy.silent) return;
          if (client.data.upstream) client.data.upstream.write(chunk);
          else client.data.early.push(new Uint8Array(chunk));
        },
        close(client) {
          client.data.upstream?.end();
          proxy.pipes.delete(client.data);
        },
      },
    });
    this.port = this.listener.port;
  }

  /** Like a stopped server: every connection drops, and new ones are refused. */
  cut(): void {
    this.listener?.stop(true);
    this.listener = null;
    for (const pipe of this.pipes) {
      pipe.client.end();
      pipe.upstream?.end();
    }
    this.pipes.clear();
  }

  /** Like a network that stopped delivering: connections stay open, and no byte gets through. */
  blackhole(): void {
    this.silent = true;
  }

  forward(): void {
    this.silent = false;
  }

  close(): void {
    this.cut();
  }
}

// Keys kept by the tracker, over real HTTP: /admin/keys, what each role may do (403), a member's
// projects, the rate limit per key (429), and that no key text is kept. Runs on the storage of
// TRACKER_TEST_STORAGE.

import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { SQL } from "bun";
import { expectApiError, OTHER_API_KEY, startTestTracker, type TestTracker, taskInput as task } from "../testing.ts";
import type { TrackerOptions } from "./server.ts";

let t: TestTracker | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

async function start(overrides: Partial<Omit<TrackerOptions, "storage" | "logger">> = {}): Promise<TestTracker> {
  t = await startTestTracker(overrides);
  return t;
}

/** A new key of the tracker, made through its API with the operator's key. */
async function addKey(tracker: TestTracker, name: string, role: string, projects?: string[]): Promise<string> {
  const response = await tracker.request("POST", "/admin/keys", { body: { name, role, ...(projects ? { projects } : {}) } });
  expect(response.status).toBe(201);
  return response.body.key;
}

describe("/admin/keys", () => {
  test("a new key is shown once, works at once, and the list shows everything of it but the key", async () => {
    const tracker = await start();
    const added = await tracker.request("POST", "/admin/keys", { body: { name: "alice", role: "member", projects: ["web"] } });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({
      name: "alice",
      role: "member",
      projects: ["web"],
      created_at: expect.any(String),
      last_used_at: null,
      revoked_at: null,
      key: expect.stringMatching(/^ttk_[A-Za-z0-9_-]{43}$/),
    });
    const key = added.body.key as string;
    expect((await tracker.request("GET", "/projects", { apiKey: key })).status).toBe(200);
    const list = await tracker.request("GET", "/admin/keys");
    expect(list.status).toBe(200);
    expect(list.body.keys).toEqual([{ ...added.body, key: undefined, last_used_at: expect.any(String) }].map(withoutKey));
    expect(JSON.stringify(list.body)).not.toContain(key);
  });

  test("a revoked key is refused at once, and stays in the list with its revocation time", async () => {
    const tracker = await start();
    const key = await addKey(tracker, "bob", "viewer");
    expect((await tracker.request("GET", "/projects", { apiKey: key })).status).toBe(200);
    const revoked = await tracker.request("DELETE", "/admin/keys/bob");
    expect(revoked.status).toBe(200);
    expect(revoked.body.key).toMatchObject({ name: "bob", revoked_at: expect.any(String) });
    expectApiError(await tracker.request("GET", "/projects", { apiKey: key }), 401, "unauthorized");
    expect((await tracker.request("GET", "/admin/keys")).body.keys).toEqual([revoked.body.key]);
  });

  test("a key whose last use cannot be written is served all the same, and the log says so without the key", async () => {
    const tracker = await start();
    const key = await addKey(tracker, "alice", "viewer");
    tracker.storage.touchApiKey = () => Promise.reject(new Error("disk full"));
    expect((await tracker.request("GET", "/projects", { apiKey: key })).status).toBe(200);
    await tracker.waitForLog("could not note when a key was last used");
    expect(tracker.logText()).toContain('"key":"alice"');
    expect(tracker.logText()).not.toContain(key);
  });

  test("bad requests are 400 naming what is wrong; a name in use is 409; an unknown name is 404", async () => {
    const tracker = await start();
    const add = (body: unknown) => tracker.request("POST", "/admin/keys", { body });
    expectApiError(
      await add({ name: "alice", role: "owner" }),
      400,
      "validation_failed",
      "role must be one of admin, member, viewer",
    );
    expectApiError(
      await add({ name: "al ice", role: "member" }),
      400,
      "validation_failed",
      "name must be 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    );
    expectApiError(
      await add({ name: "operator-2", role: "admin" }),
      400,
      "validation_failed",
      "operator-2 is the name of an operator key (TRACKER_API_KEYS or the key file); choose another",
    );
    expectApiError(
      await add({ name: "eve", role: "viewer", projects: ["web"] }),
      400,
      "validation_failed",
      "Only a member key is limited to projects; a viewer key sees every project",
    );
    await addKey(tracker, "alice", "member");
    expectApiError(
      await add({ name: "alice", role: "admin" }),
      409,
      "conflict",
      "There is a key named alice already; revoke it first, or choose another name",
    );
    expectApiError(await tracker.request("DELETE", "/admin/keys/nobody"), 404, "key_not_found", "There is no key named nobody");
  });
});

function withoutKey<T extends { key?: unknown }>(record: T): Omit<T, "key"> {
  const { key: _, ...rest } = record;
  return rest;
}

describe("roles", () => {
  test("a viewer reads everything and writes nothing: 403 naming the key, its role and what it lacks", async () => {
    const tracker = await start();
    await tracker.request("POST", "/tasks/batch", { body: { tasks: [task("T-1")] } });
    const viewer = await addKey(tracker, "board-watcher", "viewer");
    for (const path of ["/projects", "/tasks", "/tasks/T-1", "/tasks/T-1/events", "/ids/registry", "/tasks/next?project=proj"]) {
      expect([path, (await tracker.request("GET", path, { apiKey: viewer })).status]).toEqual([path, 200]);
    }
    expectApiError(
      await tracker.request("POST", "/tasks/batch", { apiKey: viewer, body: { tasks: [task("T-2")] } }),
      403,
      "forbidden",
      "The key board-watcher is a viewer: it may read but not write, and POST /tasks/batch writes; a member key may",
    );
    expectApiError(
      await tracker.request("GET", "/ids/next?type=US&project=proj", { apiKey: viewer }),
      403,
      "forbidden",
      "The key board-watcher is a viewer: it may read but not write, and GET /ids/next writes; a member key may",
    );
    expectApiError(
      await tracker.request("PUT", "/tasks/T-1/status", { apiKey: viewer, body: { status: "in_progress" } }),
      403,
      "forbidden",
    );
    expectApiError(await tracker.request("GET", "/admin/keys", { apiKey: viewer }), 403, "forbidden");
    expect((await tracker.request("GET", "/tasks/T-1")).body.task.status).toBe("pending");
  });

  test("a member writes tasks and IDs, but /admin/*, the registry's PUT and keys need an admin", async () => {
    const tracker = await start();
    const member = await addKey(tracker, "alice", "member");
    expect((await tracker.request("POST", "/tasks/batch", { apiKey: member, body: { tasks: [task("T-1")] } })).status).toBe(201);
    expect((await tracker.request("GET", "/ids/next?type=US&project=proj", { apiKey: member })).status).toBe(200);
    const claim = { apiKey: member, body: { status: "in_progress" }, headers: { "X-Agent-Id": "agent-a" } };
    expect((await tracker.request("PUT", "/tasks/T-1/status", claim)).status).toBe(200);
    expectApiError(
      await tracker.request("GET", "/admin/dump", { apiKey: member }),
      403,
      "forbidden",
      "The key alice is a member: GET /admin/dump needs an admin key",
    );
    expectApiError(
      await tracker.request("PUT", "/ids/registry/proj/US", { apiKey: member, body: { last_assigned_id: 50 } }),
      403,
      "forbidden",
      "The key alice is a member: PUT /ids/registry/<project_id>/<artifact_type> needs an admin key",
    );
    expectApiError(
      await tracker.request("POST", "/admin/keys", { apiKey: member, body: { name: "mallory", role: "admin" } }),
      403,
      "forbidden",
      "The key alice is a member: POST /admin/keys needs an admin key",
    );
    expectApiError(await tracker.request("DELETE", "/admin/keys/alice", { apiKey: member }), 403, "forbidden");
  });

  test("an admin key kept by the tracker does what the operator's keys do", async () => {
    const tracker = await start();
    const admin = await addKey(tracker, "ops", "admin");
    expect((await tracker.request("POST", "/admin/keys", { apiKey: admin, body: { name: "dev", role: "member" } })).status).toBe(
      201,
    );
    expect((await tracker.request("PUT", "/ids/registry/proj/US", { apiKey: admin, body: { last_assigned_id: 5 } })).status).toBe(
      200,
    );
    expect((await tracker.request("GET", "/admin/dump", { apiKey: admin })).status).toBe(200);
  });
});

describe("GET /whoami", () => {
  test("tells each key its name, role and projects, and never the key", async () => {
    const tracker = await start();
    const keys = {
      viewer: await addKey(tracker, "pm", "viewer"),
      member: await addKey(tracker, "web-dev", "member", ["web", "api"]),
      everywhere: await addKey(tracker, "alice", "member"),
      admin: await addKey(tracker, "lead", "admin"),
    };
    const answers = [];
    for (const key of Object.values(keys)) {
      const answer = await tracker.request("GET", "/whoami", { apiKey: key });
      expect(JSON.stringify(answer.body)).not.toContain(key);
      answers.push([answer.status, answer.body]);
    }
    expect(answers).toEqual([
      [200, { name: "pm", role: "viewer", projects: null }],
      [200, { name: "web-dev", role: "member", projects: ["web", "api"] }],
      [200, { name: "alice", role: "member", projects: null }],
      [200, { name: "lead", role: "admin", projects: null }],
    ]);
    // The test tracker has two operator keys (TEST_API_KEY, OTHER_API_KEY): the first is operator-1.
    expect((await tracker.request("GET", "/whoami")).body).toEqual({ name: "operator-1", role: "admin", projects: null });
  });

  test("needs a key that the tracker accepts: none, a wrong one or a revoked one is 401", async () => {
    const tracker = await start();
    const key = await addKey(tracker, "pm", "viewer");
    await tracker.request("DELETE", "/admin/keys/pm");
    expectApiError(await tracker.request("GET", "/whoami", { apiKey: key }), 401, "unauthorized");
    expectApiError(await tracker.request("GET", "/whoami", { apiKey: "ttk_not-a-key" }), 401, "unauthorized");
    expectApiError(await tracker.request("GET", "/whoami", { apiKey: null }), 401, "unauthorized");
  });
});

describe("a member limited to projects", () => {
  async function withProjects() {
    const tracker = await start();
    const tasks = [task("W-1", { project_id: "web" }), task("A-1", { project_id: "api" }), task("D-1", { project_id: "docs" })];
    tasks.push(task("W-2", { project_id: "web" }), task("SAME", { project_id: "api" }), task("SAME", { project_id: "docs" }));
    expect((await tracker.request("POST", "/tasks/batch", { body: { tasks } })).status).toBe(201);
    await tracker.request("POST", "/ids/reserve", { body: { type: "US", count: 2, project_id: "api" } });
    await tracker.request("POST", "/ids/reserve", { body: { type: "US", count: 2, project_id: "web" } });
    return {
      tracker,
      web: await addKey(tracker, "web-dev", "member", ["web"]),
      two: await addKey(tracker, "two", "member", ["web", "docs"]),
    };
  }

  test("never sees another project in GET /projects, GET /tasks or GET /ids/registry", async () => {
    const { tracker, web, two } = await withProjects();
    const projectsOf = async (key: string) =>
      (await tracker.request("GET", "/projects", { apiKey: key })).body.projects.map((p: any) => p.project_id);
    expect(await projectsOf(web)).toEqual(["web"]);
    expect(await projectsOf(two)).toEqual(["docs", "web"]);
    const idsOf = async (key: string, query = "") =>
      (await tracker.request("GET", `/tasks${query}`, { apiKey: key })).body.tasks.map(
        (x: any) => `${x.project_id}/${x.task_id}`,
      );
    expect(await idsOf(web)).toEqual(["web/W-1", "web/W-2"]);
    expect((await idsOf(two)).sort()).toEqual(["docs/D-1", "docs/SAME", "web/W-1", "web/W-2"]);
    const registry = (await tracker.request("GET", "/ids/registry", { apiKey: web })).body;
    const projectsIn = (rows: Array<{ project_id: string }>) => [...new Set(rows.map((row) => row.project_id))];
    expect([projectsIn(registry.counters), projectsIn(registry.reservations)]).toEqual([["web"], ["web"]]);
  });

  test("pages through its projects' tasks with next_cursor, and only theirs", async () => {
    const { tracker, two } = await withProjects();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page: any = (await tracker.request("GET", `/tasks${query}`, { apiKey: two })).body;
      expect(page.tasks.length).toBeLessThanOrEqual(1);
      seen.push(...page.tasks.map((x: any) => `${x.project_id}/${x.task_id}`));
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(seen.sort()).toEqual(["docs/D-1", "docs/SAME", "web/W-1", "web/W-2"]);
  });

  test("is refused another project by name (403), and finds no task of it by ID alone (404)", async () => {
    const { tracker, web, two } = await withProjects();
    expectApiError(
      await tracker.request("GET", "/tasks?project=api", { apiKey: web }),
      403,
      "forbidden",
      "The key web-dev is a member of project web only: project api is not among them",
    );
    expectApiError(
      await tracker.request("POST", "/tasks/batch", {
        apiKey: two,
        body: { tasks: [task("N-1", { project_id: "web" }), task("N-2", { project_id: "api" })] },
      }),
      403,
      "forbidden",
      "The key two is a member of projects web, docs only: project api is not among them",
    );
    expectApiError(await tracker.request("GET", "/ids/next?type=US&project=api", { apiKey: web }), 403, "forbidden");
    expectApiError(await tracker.request("POST", "/tasks/claim", { apiKey: web, body: { project_id: "api" } }), 403, "forbidden");
    expectApiError(
      await tracker.request("POST", "/ids/reserve", { apiKey: web, body: { type: "US", count: 1, project_id: "api" } }),
      403,
      "forbidden",
    );
    expectApiError(await tracker.request("GET", "/tasks/A-1", { apiKey: web }), 404, "task_not_found", "Task not found: A-1");
    expectApiError(
      await tracker.request("PUT", "/tasks/A-1/status", { apiKey: web, body: { status: "in_progress" } }),
      404,
      "task_not_found",
    );
    // SAME is in api and docs: for `two` it is docs' alone, for web-dev it is not there.
    expect((await tracker.request("GET", "/tasks/SAME", { apiKey: two })).body.task.project_id).toBe("docs");
    expectApiError(await tracker.request("GET", "/tasks/SAME", { apiKey: web }), 404, "task_not_found");
    expect((await tracker.request("GET", "/tasks/W-1", { apiKey: web })).body.task.project_id).toBe("web");
    const reservations = (await tracker.request("GET", "/ids/registry")).body.reservations;
    const apiReservation = reservations.find((r: any) => r.project_id === "api").reservation_id;
    expectApiError(
      await tracker.request("GET", `/ids/reservations/${apiReservation}`, { apiKey: web }),
      404,
      "reservation_not_found",
    );
    expect((await tracker.request("GET", "/tasks/A-1")).body.task.status).toBe("pending");
  });

  test("hears only its projects' changes on GET /events", async () => {
    const { tracker, web } = await withProjects();
    const abort = new AbortController();
    const response = await fetch(`${tracker.url}/events`, { headers: { Authorization: `Bearer ${web}` }, signal: abort.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    await tracker.request("POST", "/tasks/batch", { body: { tasks: [task("A-9", { project_id: "api" })] } });
    await tracker.request("POST", "/tasks/batch", { body: { tasks: [task("W-9", { project_id: "web" })] } });
    let text = "";
    while (!text.includes("W-9")) text += (await reader.read()).value ?? "";
    abort.abort();
    expect(text).not.toContain("A-9");
  });
});

describe("an agent is bound to its key", () => {
  test("another key sending the same X-Agent-Id cannot complete, renew, release or cancel the claim; its own key can", async () => {
    const tracker = await start();
    const alice = await addKey(tracker, "alice", "member");
    const bob = await addKey(tracker, "bob", "member");
    const as = (apiKey: string) => ({ apiKey, headers: { "X-Agent-Id": "claude-3f2a9c1e-77b" } });
    await tracker.request("POST", "/tasks/batch", { ...as(alice), body: { tasks: [task("T-1")] } });
    const claimed = await tracker.request("PUT", "/tasks/T-1/status", { ...as(alice), body: { status: "in_progress" } });
    expect(claimed.body.updated_task).toMatchObject({ claimed_by: "claude-3f2a9c1e-77b", claimed_by_key: "alice" });
    const holder = `T-1 is claimed by key "alice" · agent "claude-3f2a9c1e-77b" until ${claimed.body.updated_task.lease_expires_at}; only its holder can complete, release or renew it`;
    for (const status of ["completed", "pending", "cancelled"]) {
      const refused = await tracker.request("PUT", "/tasks/T-1/status", { ...as(bob), body: { status } });
      expectApiError(refused, 409, "not_claim_holder", holder);
    }
    expectApiError(
      await tracker.request("POST", "/tasks/T-1/heartbeat", { ...as(bob), body: {} }),
      409,
      "not_claim_holder",
      holder,
    );
    expect((await tracker.request("POST", "/tasks/T-1/heartbeat", { ...as(alice), body: {} })).status).toBe(200);
    const done = await tracker.request("PUT", "/tasks/T-1/status", { ...as(alice), body: { status: "completed" } });
    expect(done.body.updated_task).toMatchObject({ status: "completed", claimed_by_key: "alice" });
    const events = await tracker.request("GET", "/tasks/T-1/events", as(bob));
    expect(events.body.events.map((event: { type: string; key_name: string }) => [event.type, event.key_name])).toEqual([
      ["created", "alice"],
      ["claimed", "alice"],
      ["completed", "alice"],
    ]);
  });

  test("a person's forced release on the board ends another key's claim, and the history names both keys", async () => {
    const tracker = await start();
    const alice = await addKey(tracker, "alice", "member");
    const carol = await addKey(tracker, "carol", "member");
    await tracker.request("POST", "/tasks/batch", { apiKey: alice, body: { tasks: [task("T-1")] } });
    const claim = { apiKey: alice, headers: { "X-Agent-Id": "agent-a" }, body: { status: "in_progress" } };
    await tracker.request("PUT", "/tasks/T-1/status", claim);
    const force = { apiKey: carol, headers: { "X-Agent-Id": "board-carol" }, body: { status: "pending", force: true } };
    const released = await tracker.request("PUT", "/tasks/T-1/status", force);
    expect(released.body.updated_task).toMatchObject({ status: "pending", claimed_by: null, claimed_by_key: null });
    const events = await tracker.request("GET", "/tasks/T-1/events", { apiKey: alice });
    expect(events.body.events.at(-1)).toMatchObject({
      type: "force_released",
      agent_id: "board-carol",
      key_name: "carol",
      details: { former_holder: "agent-a", former_holder_key: "alice" },
    });
  });

  test("a claim made without X-Agent-Id is bound to its key alone", async () => {
    const tracker = await start();
    const alice = await addKey(tracker, "alice", "member");
    const bob = await addKey(tracker, "bob", "member");
    await tracker.request("POST", "/tasks/batch", { apiKey: alice, body: { tasks: [task("T-1")] } });
    await tracker.request("POST", "/tasks/claim", { apiKey: alice, body: { project_id: "proj" } });
    const complete = (apiKey: string) => tracker.request("PUT", "/tasks/T-1/status", { apiKey, body: { status: "completed" } });
    expectApiError(await complete(bob), 409, "not_claim_holder");
    expect((await complete(alice)).body.updated_task).toMatchObject({
      status: "completed",
      claimed_by: null,
      claimed_by_key: "alice",
    });
  });
});

describe("the rate limit", () => {
  test("a key over TRACKER_RATE_LIMIT gets 429 with Retry-After, while another key is served", async () => {
    const tracker = await start({ rateLimit: { perSecond: 1, burst: 2 } });
    const alice = await addKey(tracker, "alice", "member");
    const bob = await addKey(tracker, "bob", "member");
    expect((await tracker.request("GET", "/projects", { apiKey: alice })).status).toBe(200);
    expect((await tracker.request("GET", "/projects", { apiKey: alice })).status).toBe(200);
    const refused = await tracker.request("GET", "/projects", { apiKey: alice });
    expectApiError(refused, 429, "too_many_requests", "The key alice is over its rate limit (1 a second, burst 2); retry in 1 s");
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await tracker.request("GET", "/projects", { apiKey: bob })).status).toBe(200);
  });

  test("unset, a kept key has the default (a burst of 200) and the operator's keys none", async () => {
    const tracker = await start();
    const alice = await addKey(tracker, "alice", "viewer");
    // 300 at once: well past the burst, before a second's refill (50) could make up the difference.
    const refusals = async (apiKey: string) => {
      const all = await Promise.all(Array.from({ length: 300 }, () => tracker.request("HEAD", "/projects", { apiKey })));
      return all.filter((response) => response.status === 429).length;
    };
    expect(await refusals(OTHER_API_KEY)).toBe(0);
    expect(await refusals(alice)).toBeGreaterThanOrEqual(1);
  });
});

describe("no key text is kept", () => {
  test("neither the database nor a dump holds a key made by the tracker", async () => {
    const tracker = await start();
    // An Idempotency-Key is not taken here: a stored response would hold the key.
    const headers = { "Idempotency-Key": "make-alice" };
    const added = await tracker.request("POST", "/admin/keys", { body: { name: "alice", role: "member" }, headers });
    expect(added.status).toBe(201);
    const key = added.body.key as string;
    await tracker.request("POST", "/tasks/batch", {
      apiKey: key,
      body: { tasks: [task("T-1")] },
      headers: { "Idempotency-Key": "k-1" },
    });
    const dump = await tracker.request("GET", "/admin/dump");
    expect(dump.status).toBe(200);
    expect(String(dump.body)).not.toContain(key);
    expect(String(dump.body)).not.toContain("api_keys");
    expect(await storedText(tracker)).not.toContain(key);
  });
});

/** Everything the storage keeps, as text: SQLite's files, or every row of PostgreSQL's schema. */
async function storedText(tracker: TestTracker): Promise<string> {
  if (process.env.TRACKER_TEST_STORAGE !== "postgres") {
    const file = (tracker.storage as unknown as { db: { filename: string } }).db.filename;
    const dir = dirname(file);
    return readdirSync(dir)
      .map((name) => readFileSync(`${dir}/${name}`).toString("latin1"))
      .join("\n");
  }
  const url = (tracker.storage as unknown as { options: { url: string } }).options.url;
  const sql = new SQL(url, { max: 1 });
  try {
    const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`;
    let text = "";
    for (const { tablename } of tables) text += JSON.stringify(await sql`SELECT * FROM ${sql(tablename)}`);
    return text;
  } finally {
    await sql.close();
  }
}

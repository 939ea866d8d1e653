// The task board: opened with the tracker's API key (kept in sessionStorage, this tab only, or in
// localStorage when the person ticks "Remember the key on this device"), it shows the projects, the
// columns of one (or a search over it), and the ID registry, live from GET /events. The address
// holds the place: `#project=web&label=bug&q=login&task=TASK-7` opens the same board and dialog.
// A viewer's key (GET /whoami) gets the board without its steering: it may watch, not steer.

import { type Api, ApiFailure, createApi, type KeyInfo, type ProjectSummary, type Registry, type Task } from "./api.ts";
import { ColumnsView } from "./columns.ts";
import { byId, el, fill } from "./dom.ts";
import { FindControls } from "./find.ts";
import { inFormWords } from "./form-errors.ts";
import { when } from "./format.ts";
import { KnownTasks } from "./known.ts";
import { type Narrowing, narrowingOf, sameNarrowing, writeNarrowing } from "./narrowing.ts";
import { SearchView } from "./search.ts";
import { follow } from "./stream.ts";
import { messageOf, TaskDialog } from "./task-dialog.ts";

const KEY_STORAGE = "task-board.api-key";
const NAME_STORAGE = "task-board.name";
const FIRST_SCREEN_MARK = "board-first-screen";

const openForm = byId<HTMLFormElement>("open-form");
const keyInput = byId<HTMLInputElement>("api-key");
const openError = byId("open-error");
const boardError = byId("board-error");
const liveStatus = byId("live-status");
const connectionLost = byId("connection-lost");
const rememberKey = byId<HTMLInputElement>("remember-key");
/** Relative times ("working 12 min", "3 min ago") are in minutes: a tick every 15 s keeps them right. */
const TICK_MS = 15_000;

// ─── The person's name (X-Agent-Id of the board's writes) ───────────────────────────────────────

/** X-Agent-Id is 1–128 characters of A-Z a-z 0-9 . _ - : @ (docs/API.md): a name, never a sentence. */
function nameProblem(name: string): string | null {
  if (name.length === 0) return "Enter your name.";
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(name)) {
    return "Use at most 128 of letters A–Z, digits and . _ - : @, without spaces (alice, alice.smith).";
  }
  return null;
}

function showName(): void {
  byId("who-name").textContent = `Steering as ${localStorage.getItem(NAME_STORAGE) ?? "(no name yet)"}`;
}

/** The stored name, or asks for it once; null when the person closes the question. */
function personName(forceAsk = false): Promise<string | null> {
  const stored = localStorage.getItem(NAME_STORAGE);
  // A name saved before names lost their spaces is asked for again: the tracker refuses it now.
  if (stored !== null && !forceAsk && nameProblem(stored) === null) return Promise.resolve(stored);
  const dialog = byId<HTMLDialogElement>("name-dialog");
  const form = byId<HTMLFormElement>("name-form");
  const input = byId<HTMLInputElement>("person-name");
  const error = byId("name-error");
  input.value = stored ?? "";
  error.textContent = "";
  dialog.showModal();
  return new Promise((resolve) => {
    let saved: string | null = null;
    const onSubmit = (event: Event) => {
      event.preventDefault();
      const name = input.value.trim();
      const problem = nameProblem(name);
      if (problem) {
        error.textContent = problem;
        return;
      }
      localStorage.setItem(NAME_STORAGE, name);
      saved = name;
      showName();
      dialog.close();
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", onSubmit);
        resolve(saved);
      },
      { once: true },
    );
  });
}

// ─── The board of one tracker ───────────────────────────────────────────────────────────────────

class Board {
  private projects: ProjectSummary[] = [];
  private projectId: string | null;
  private view: "board" | "registry";
  private narrowing: Narrowing;
  /** The task the address names, opened once the first screen is shown. */
  private taskToOpen: string | null;
  private readonly known: KnownTasks;
  private readonly columns: ColumnsView;
  private readonly search: SearchView;
  private readonly find: FindControls;
  private readonly taskDialog: TaskDialog;
  private stopStream: () => void = () => {};
  private followed: string | null | undefined;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private firstScreenShown = false;
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(
    private readonly api: Api,
    /** False for a viewer's key: the board shows no control that writes. */
    steers: boolean,
    private readonly onUnauthorized: () => void,
  ) {
    const place = new URLSearchParams(location.hash.slice(1));
    this.projectId = place.get("project");
    this.view = place.get("view") === "registry" ? "registry" : "board";
    this.narrowing = narrowingOf(place);
    this.taskToOpen = place.get("task");
    this.known = new KnownTasks(api);
    this.taskDialog = new TaskDialog(
      api,
      this.known,
      () => personName(),
      () => this.remember(),
      (label) => this.narrow({ ...this.narrowing, query: "", labels: [label] }),
      steers,
    );
    for (const id of ["add-task", "start-add"]) byId(id).hidden = !steers;
    const openTask = (task: Task) => void this.taskDialog.open(task);
    this.columns = new ColumnsView(byId("columns"), api, this.known, openTask, (error) => this.failed(error));
    this.search = new SearchView(api, this.known, openTask, (error) => this.failed(error));
    this.find = new FindControls((narrowing) => this.narrow(narrowing));
    this.find.show(this.narrowing);
    this.columns.narrow(this.narrowing);
    this.ticker = setInterval(() => {
      this.columns.tick(Date.now());
      this.search.tick(Date.now());
    }, TICK_MS);
    this.showView(this.view);
  }

  /** New search, filters or grouping: shown at once, kept in the address. */
  narrow(narrowing: Narrowing): void {
    if (sameNarrowing(narrowing, this.narrowing)) return;
    this.narrowing = narrowing;
    this.find.show(narrowing);
    this.columns.narrow(narrowing);
    this.remember();
    this.scheduleReload();
  }

  /** The person changed the address (or went back): go where it says. */
  followAddress(): void {
    const place = new URLSearchParams(location.hash.slice(1));
    const projectId = place.get("project");
    if (projectId !== null && projectId !== this.projectId) this.select(projectId);
    this.narrow(narrowingOf(place));
    const taskId = place.get("task");
    if (taskId === this.taskDialog.shownId()) return;
    if (taskId === null) this.taskDialog.close();
    else if (this.projectId !== null) this.openFromAddress(this.projectId, taskId);
  }

  private openFromAddress(projectId: string, taskId: string): void {
    void this.taskDialog.openById(projectId, taskId).catch((error) => this.failed(error));
  }

  /** `projects`: the list just read to check the key, so the first screen does not ask twice. */
  start(projects: ProjectSummary[]): void {
    this.reloading = this.reload(projects)
      .catch((error) => this.failed(error))
      .finally(() => this.reloadFinished());
  }

  stop(): void {
    this.stopStream();
    clearInterval(this.ticker);
  }

  select(projectId: string): void {
    this.projectId = projectId;
    this.remember();
    this.scheduleReload();
  }

  showView(view: "board" | "registry"): void {
    this.view = view;
    for (const [name, tab, panel] of [
      ["board", "tab-board", "panel-board"],
      ["registry", "tab-registry", "panel-registry"],
    ] as const) {
      const selected = name === view;
      byId(tab).setAttribute("aria-selected", String(selected));
      byId(tab).tabIndex = selected ? 0 : -1;
      byId(panel).hidden = !selected;
    }
    this.remember();
    if (view === "registry") void this.loadRegistry().catch((error) => this.failed(error));
  }

  /** Coalesces reloads: at most one runs, and one more follows if anything changed meanwhile. */
  scheduleReload(): void {
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = this.reload()
      .catch((error) => this.failed(error))
      .finally(() => this.reloadFinished());
  }

  private reloadFinished(): void {
    this.reloading = null;
    if (this.reloadAgain) {
      this.reloadAgain = false;
      this.scheduleReload();
    }
  }

  private async reload(known?: ProjectSummary[]): Promise<void> {
    this.projects = known ?? (await this.api.get<{ projects: ProjectSummary[] }>("/projects")).projects;
    if (!this.projects.some((project) => project.project_id === this.projectId)) {
      this.projectId = this.projects[0]?.project_id ?? null;
      this.remember();
    }
    this.renderProjects();
    this.followProject();
    this.showStartHint();
    if (this.projectId !== null) await this.loadTasks(this.projectId);
    if (this.view === "registry") await this.loadRegistry();
    boardError.textContent = "";
    if (!this.firstScreenShown) {
      this.firstScreenShown = true;
      performance.mark(FIRST_SCREEN_MARK);
      if (this.taskToOpen !== null && this.projectId !== null) this.openFromAddress(this.projectId, this.taskToOpen);
      this.taskToOpen = null;
    }
  }

  /** The columns, or the search's results while there is a search. */
  private async loadTasks(projectId: string): Promise<void> {
    const searching = this.narrowing.query !== "";
    this.columns.show(projectId);
    this.search.show(searching);
    byId("columns").hidden ||= searching;
    if (searching) await this.search.run(projectId, this.narrowing);
    else await this.columns.reload(this.projects.find((p) => p.project_id === this.projectId));
    this.find.suggest(this.known.all());
  }

  /** A project without tasks (or no project at all) says how to start instead of four empty columns. */
  private showStartHint(): void {
    const project = this.projects.find((p) => p.project_id === this.projectId);
    const empty = !project || project.ready + project.blocked + project.in_progress + project.completed + project.cancelled === 0;
    byId("start-here").hidden = !empty;
    byId("columns").hidden = empty;
    for (const id of ["search-box", "filters-box"]) byId(id).hidden = empty;
    byId("start-what").textContent = project
      ? `The project ${project.project_id} has no tasks yet.`
      : "The tracker has no projects yet: a project starts with its first task.";
    byId("start-import").textContent = `task-tracking-mcp import TODO.md --project ${project?.project_id ?? "my-project"}`;
  }

  private renderProjects(): void {
    // The list is redrawn on every change: a keyboard user on it stays on the same project.
    const focused = (document.activeElement as HTMLElement | null)?.dataset.projectId;
    fill(
      byId("projects"),
      ...this.projects.map((project) => {
        const button = el(
          "button",
          { type: "button", class: "project" },
          el("span", { class: "project-name" }, project.project_id),
          el(
            "span",
            { class: "project-counts" },
            `${project.ready} ready · ${project.blocked} blocked · ${project.in_progress} in progress · ${project.completed} completed${
              project.cancelled ? ` · ${project.cancelled} cancelled` : ""
            }`,
          ),
        );
        button.dataset.projectId = project.project_id;
        if (project.project_id === this.projectId) button.setAttribute("aria-current", "true");
        button.addEventListener("click", () => this.select(project.project_id));
        return el("li", {}, button);
      }),
    );
    if (focused !== undefined)
      byId("projects")
        .querySelector<HTMLElement>(`[data-project-id="${CSS.escape(focused)}"]`)
        ?.focus();
  }

  /** One stream, for the project on screen (every project's while there is none). */
  private followProject(): void {
    if (this.followed === this.projectId) return;
    this.stopStream();
    this.followed = this.projectId;
    const path =
      this.projectId === null ? "/events?view=tasks" : `/events?view=tasks&project=${encodeURIComponent(this.projectId)}`;
    this.stopStream = follow(this.api, path, {
      onOpen: () => {
        liveStatus.textContent = "Live";
        connectionLost.textContent = "";
        this.known.forget();
        this.scheduleReload();
      },
      onTasks: (tasks) => {
        for (const task of tasks) {
          this.known.learn(task);
          this.taskDialog.changed(task);
        }
        this.scheduleReload();
      },
      onDown: () => {
        liveStatus.textContent = "Reconnecting to the tracker…";
        connectionLost.textContent = "The connection to the tracker is lost: the cards show what was known then. Reconnecting…";
      },
      onUnauthorized: () => this.onUnauthorized(),
    });
  }

  private async loadRegistry(): Promise<void> {
    if (this.projectId === null) return;
    const registry = await this.api.get<Registry>(`/ids/registry?project=${encodeURIComponent(this.projectId)}`);
    byId("no-counters").hidden = registry.counters.length > 0;
    fill(
      byId("counters"),
      ...registry.counters
        .toSorted((a, b) => a.artifact_type.localeCompare(b.artifact_type))
        .map((counter) =>
          el(
            "tr",
            {},
            el("td", {}, counter.artifact_type),
            el("td", {}, String(counter.last_assigned_id)),
            el("td", {}, `${counter.artifact_type}-${String(counter.last_assigned_id + 1).padStart(3, "0")}`),
          ),
        ),
    );
    byId("no-reservations").hidden = registry.reservations.length > 0;
    fill(
      byId("reservations"),
      ...registry.reservations.map((reservation) => {
        const ids = reservation.reserved_ids;
        const range = ids.length > 1 ? `${ids[0]} … ${ids[ids.length - 1]} (${ids.length})` : (ids[0] ?? "");
        return el(
          "tr",
          {},
          el("td", {}, range),
          el("td", {}, when(reservation.expires_at)),
          el("td", { class: "mono" }, reservation.reservation_id),
        );
      }),
    );
  }

  private failed(error: unknown): void {
    if (error instanceof Error && error.name === "Unauthorized") return this.onUnauthorized();
    boardError.textContent = messageOf(error);
  }

  private remember(): void {
    const place = new URLSearchParams();
    if (this.projectId !== null) place.set("project", this.projectId);
    if (this.view === "registry") place.set("view", "registry");
    writeNarrowing(place, this.narrowing);
    // Until the first screen opens it, the address's task stays in the address.
    const taskId = this.taskDialog.shownId() ?? this.taskToOpen;
    if (taskId !== null) place.set("task", taskId);
    history.replaceState(null, "", `#${place}`);
  }

  currentProject(): string | null {
    return this.projectId;
  }

  /** Adds one task; without task_id the tracker names it (TASK-nnn). */
  async addTask(task: { task_id?: string; project_id: string; description: string; priority: string; depends_on: string[] }) {
    const name = await personName();
    if (name === null) return false;
    await this.api.write("POST", "/tasks/batch", { tasks: [task] }, name);
    this.select(task.project_id);
    return true;
  }
}

// ─── Opening and closing ────────────────────────────────────────────────────────────────────────

let board: Board | null = null;

/** The key's name and role; null from a tracker without GET /whoami (an older one): every control, as before. */
async function whoAmI(api: Api): Promise<KeyInfo | null> {
  try {
    return await api.get<KeyInfo>("/whoami");
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 404) return null;
    throw error;
  }
}

/** Says once who is signed in: a viewer, that it may watch and not steer; anyone else, the name it steers as. */
function showWho(key: KeyInfo | null): void {
  const watching = key?.role === "viewer";
  byId("change-name").hidden = watching;
  if (watching) byId("who-name").textContent = `Signed in as ${key.name}, a viewer: you can watch, not steer.`;
  else showName();
}

/**
 * Both answers, or the first one's failure once both have answered: a wrong key is told after both of
 * its requests are done, never while one is still on its way.
 */
async function bothAnswered<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}

async function openBoard(apiKey: string): Promise<void> {
  openError.textContent = "";
  const api = createApi(apiKey);
  let projects: ProjectSummary[];
  let key: KeyInfo | null;
  try {
    [projects, key] = await bothAnswered(
      api.get<{ projects: ProjectSummary[] }>("/projects").then((answer) => answer.projects),
      whoAmI(api),
    );
  } catch (error) {
    if (error instanceof Error && error.name === "Unauthorized") forgetKey();
    showOpenForm();
    openError.textContent =
      error instanceof Error && error.name === "Unauthorized"
        ? "That API key was not accepted. Check it and try again."
        : messageOf(error);
    return;
  }
  keepKey(apiKey);
  keyInput.value = "";
  openForm.hidden = true;
  byId("board").hidden = false;
  byId("who").hidden = false;
  showWho(key);
  const steers = key?.role !== "viewer";
  board = new Board(api, steers, () => closeBoard("The API key is no longer accepted. Open the board again."));
  board.start(projects);
  // Asked once, when the board opens, rather than on top of the first form that writes (a viewer writes nothing).
  if (steers && localStorage.getItem(NAME_STORAGE) === null) void personName();
}

/** This tab only, unless the person ticked "Remember the key on this device". */
function keepKey(apiKey: string): void {
  const remembered = rememberKey.checked || localStorage.getItem(KEY_STORAGE) === apiKey;
  forgetKey();
  (remembered ? localStorage : sessionStorage).setItem(KEY_STORAGE, apiKey);
  rememberKey.checked = false;
}

function forgetKey(): void {
  sessionStorage.removeItem(KEY_STORAGE);
  localStorage.removeItem(KEY_STORAGE);
}

function showOpenForm(): void {
  openForm.hidden = false;
  byId("board").hidden = true;
  byId("who").hidden = true;
  liveStatus.textContent = "";
  connectionLost.textContent = "";
  keyInput.focus();
}

function closeBoard(message = ""): void {
  board?.stop();
  board = null;
  forgetKey();
  for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  showOpenForm();
  openError.textContent = message;
}

openForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key === "") {
    openError.textContent = "Enter the tracker's API key.";
    return;
  }
  void openBoard(key);
});

byId("sign-out").addEventListener("click", () => closeBoard());
window.addEventListener("hashchange", () => board?.followAddress());
byId("change-name").addEventListener("click", () => void personName(true));
for (const button of document.querySelectorAll<HTMLButtonElement>("[data-close]")) {
  button.addEventListener("click", () => button.closest("dialog")?.close());
}

// ─── Tabs: click, or the arrow keys ─────────────────────────────────────────────────────────────

const tabs = [byId<HTMLButtonElement>("tab-board"), byId<HTMLButtonElement>("tab-registry")];
tabs.forEach((tab, index) => {
  const view = index === 0 ? "board" : "registry";
  tab.addEventListener("click", () => board?.showView(view));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    const next = tabs[(index + step + tabs.length) % tabs.length]!;
    next.focus();
    next.click();
  });
});

// ─── Adding a task ──────────────────────────────────────────────────────────────────────────────

const addDialog = byId<HTMLDialogElement>("add-dialog");
const addError = byId("add-error");
byId("add-task").addEventListener("click", () => {
  byId<HTMLInputElement>("add-project").value = board?.currentProject() ?? "";
  showAddError("", null);
  addDialog.showModal();
});
/** The add form's inputs, by the API field they fill: a tracker sentence naming the field names the input. */
const ADD_INPUTS = {
  description: "add-description",
  project_id: "add-project",
  priority: "add-priority",
  depends_on: "add-depends",
  task_id: "add-id",
};

function showAddError(sentence: string, inputId: string | null): void {
  addError.textContent = sentence;
  for (const id of Object.values(ADD_INPUTS)) byId(id).removeAttribute("aria-invalid");
  if (inputId === null) return;
  byId(inputId).setAttribute("aria-invalid", "true");
  byId(inputId).focus();
}

/** The task the form describes; an empty Task ID is left out, so the tracker assigns one. */
function taskOfAddForm() {
  const value = (id: string) => byId<HTMLInputElement>(id).value.trim();
  const taskId = value(ADD_INPUTS.task_id);
  return {
    description: value(ADD_INPUTS.description),
    project_id: value(ADD_INPUTS.project_id),
    priority: value(ADD_INPUTS.priority),
    depends_on: value(ADD_INPUTS.depends_on)
      .split(",")
      .map((id) => id.trim())
      .filter(Boolean),
    ...(taskId === "" ? {} : { task_id: taskId }),
  };
}

byId<HTMLFormElement>("add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const task = taskOfAddForm();
  if (!task.description) return showAddError("Enter the description.", ADD_INPUTS.description);
  if (!task.project_id) return showAddError("Enter the project.", ADD_INPUTS.project_id);
  showAddError("", null);
  board
    ?.addTask(task)
    .then((added) => {
      if (!added) return;
      for (const id of ["add-id", "add-description", "add-depends"]) byId<HTMLInputElement>(id).value = "";
      addDialog.close();
    })
    .catch((error: unknown) => {
      const inWords = inFormWords(error, ADD_INPUTS);
      showAddError(inWords?.sentence ?? messageOf(error), inWords?.input ?? null);
    });
});

// ─── Start ──────────────────────────────────────────────────────────────────────────────────────

const savedKey = sessionStorage.getItem(KEY_STORAGE) ?? localStorage.getItem(KEY_STORAGE);
if (savedKey) void openBoard(savedKey);
else showOpenForm();

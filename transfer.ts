/**
 * Import and export, the `import` and `export` subcommands of task-tracking-mcp: not the MCP server.
 * index.ts loads this module only when one of them runs, so the server's start never parses it.
 *
 * `import FILE --project P [--dry-run] [--force] [--archive]` turns a markdown task list, a `gh issue
 * list --json` dump or one of our exports into tasks (and, imported again, into changes of them that
 * undo nothing a person changed since); `export --project P [--format markdown|json]` writes a project
 * out in a form that imports back. The README's "Import and export" describes both formats for users.
 *
 * Read top to bottom: the file's tasks; the markdown reader; the `gh` and export-JSON parsers; the
 * checks over a whole file; the plan (what an import does to a project) and how it is carried out;
 * the commands (arguments, import and its check against the tasks' history, export and the markdown
 * it writes).
 */
import { basename } from "node:path";
import { z } from "zod";

/** The command's name, as index.ts's NAME: usage lines and the export's first line say it. */
export const COMMAND = "task-tracking-mcp";

// The API's rules for what a file may hold, as index.ts keeps them for the tools (docs/API.md); a test
// holds the two copies equal, so that this module needs nothing of the server to parse a file.
export const ID_CHARACTERS = /^[A-Za-z0-9._-]+$/;
export const ONLY_DOTS = /^\.+$/;
export const ARTIFACT_TYPE = /^[A-Z][A-Z0-9]{0,15}$/;
export const TASK_STATUSES = ["pending", "in_progress", "completed", "cancelled"] as const;
export const PRIORITIES = ["high", "medium", "low"] as const;

export type Status = (typeof TASK_STATUSES)[number];

/** A checklist item of a task: done when ticked off. */
export interface Criterion {
  text: string;
  done: boolean;
}

/** A note of a task's log: when, by whom (an agent ID, a person's name, or null) and what. */
export interface Note {
  at?: string;
  by?: string | null;
  text: string;
}

/**
 * A task as the tracker answers it, as far as import and export read it (the tracker may send more).
 * The content fields are optional: a tracker before 0.3.0 sends none of them, and a list page sends no notes.
 */
export interface TrackedTask {
  task_id: string;
  description: string;
  status: Status;
  priority: (typeof PRIORITIES)[number];
  depends_on: string[];
  inputs: string[];
  outputs: string[];
  claimed_by?: string | null;
  lease_expires_at?: unknown;
  completion_notes?: string | null;
  completed_at?: unknown;
  labels?: string[];
  parent_id?: string | null;
  acceptance_criteria?: Criterion[];
  notes_count?: number;
  notes?: Note[];
}

/** The tracker as import and export use it: index.ts hands over its own client (retries, timeouts, the key). */
export interface Tracker {
  /** Every task of the project, page after page. */
  tasks(project: string): Promise<TrackedTask[]>;
  /** A GET whose answer must have `schema`'s shape. */
  read<T>(schema: z.ZodType<T>, path: string): Promise<T>;
  /** A write, sent with an Idempotency-Key so that a retry does it once. */
  write(method: "POST" | "PATCH" | "PUT", path: string, body: unknown): Promise<void>;
}

/**
 * What the commands take from the MCP server (index.ts), which loads this module only for them: this
 * module imports nothing of the server, so the server's start never reads it and the two never import
 * each other.
 */
export interface TransferHost {
  /** The tracker of the configuration in `env` (TASK_TRACKING_URL, the key); throws when it is not configured. */
  connect(env: Record<string, string | undefined>, fetchImpl: typeof fetch): Tracker;
  /** A failure the user reads as one sentence (configuration, the service's answer) and its HTTP status; undefined for a bug. */
  failureOf(error: unknown): { sentence: string; status?: number } | undefined;
  /** What is wrong with a project ID, as the tools say it; undefined when it is one. */
  projectProblem(project: string): string | undefined;
}

// ─── The file's tasks ──────────────────────────────────────────────────────────────────────────

/** A task as a file describes it, before it meets the tracker. `line`: where the file says it (0: nowhere, e.g. JSON). */
export interface FileTask {
  task_id: string;
  line: number;
  status: "pending" | "completed" | "cancelled";
  priority: (typeof PRIORITIES)[number];
  description: string;
  depends_on: string[];
  inputs: string[];
  outputs: string[];
  completion_notes: string;
  /** The item it is a step of: the task it sits under in the file. */
  parent_id?: string;
  labels: string[];
  acceptance_criteria: Criterion[];
  /** Brought along when the task is added; an existing task keeps its own log. */
  notes: Note[];
}

export interface FileProblem {
  /** 0 when the problem has no line (JSON input names its item instead). */
  line: number;
  message: string;
}

/** The highest number a file uses of each artifact type, and the line that uses it. */
export type Counters = Map<string, { number: number; line: number }>;

/**
 * A file's tasks in file order, what is wrong with it, and the artifact IDs it holds: `counters` of the
 * items' own IDs (`TASK-012: …`), `mentions` of the IDs its text mentions (`US-031`, but also `SHA-256`,
 * which is why a mention raises only a counter the project has already).
 */
export interface ParsedFile {
  format: "markdown" | "github" | "export";
  tasks: FileTask[];
  counters: Counters;
  mentions: Counters;
  problems: FileProblem[];
  /** What the import reads in a way the file may not mean: printed, never a refusal. */
  warnings: FileProblem[];
}

const parsedFile = (format: ParsedFile["format"], problems: FileProblem[] = []): ParsedFile => ({
  format,
  tasks: [],
  counters: new Map(),
  mentions: new Map(),
  problems,
  warnings: [],
});

/** Of a description and of completion notes. */
const MAX_TEXT = 10_000;
/** The IDs people give their tasks and artifacts: an upper-case type, a dash, a number (`TASK-12`, `US-027`). */
const ARTIFACT_ID = /^([A-Z][A-Z0-9]*)-(\d{1,9})$/;
/** The same in running text, with three digits at least (the registry pads to three), which keeps `UTF-8` and `HTTP-2` out. */
const ARTIFACT_MENTION = /(?<![A-Za-z0-9_-])([A-Z][A-Z0-9]{0,15})-(\d{3,9})(?![A-Za-z0-9_-])/g;
const EXPORT_MARKER = "<!-- task-tracking-mcp export";
/** On an export's first line: its headings are the sections of its tasks (an export before 0.3.0 grouped them by status). */
const SECTIONS_MARK = "headings are sections";
/** The line a task's description ends with when the file put it under headings, a label or plain items. */
const SECTION_LINE = /\n\nSection: ([^\n]+)$/;
const SECTION_SEPARATOR = " › ";
const PRIORITY_SUFFIX = /\s*\((high|medium|low)\)$/;
const LIST_ITEM = /^([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
const CHECKBOX = /^\[([ xX])\](?:\s+(.*)|$)/;
/** `[-]`, `[/]`, `[~]`, `[?]`, `[]`: a checkbox with a mark of its own; the item imports as pending, with a warning. */
const ODD_CHECKBOX = /^\[([^\]\s]?)\](?:\s+(.*)|$)/;
/** `[ x]`, `[WIP]`: meant as a checkbox perhaps, but not one (and `[-]`, `[]` read back as checkboxes, which the export escapes). A link (`[text](url)`, `[text][ref]`) is not meant. */
const NOT_A_CHECKBOX = /^\[([^\]]{0,3})\](?![([:])/;
/** An item's own ID: `TASK-012:`, `**TASK-012**`, `**TASK-012:**`, or any task ID in a bold code span, `` **`login-form`** ``. */
const ITEM_ID = /^(?:\*\*`([^`]*)`\*\*|\*\*([A-Z][A-Z0-9]*-\d+):?\*\*:?|([A-Z][A-Z0-9]*-\d+):)(?:\s+|$)/;
const METADATA =
  /^[-*+]\s+(depends on|inputs|outputs|completion notes|held by|completed by|labels|acceptance criteria|note(?: by \S+)? at \d{4}-\d\d-\d\dT[\d:.]+Z):(?:\s+(.*)|$)/i;
/** The key of a note's metadata entry, which says who wrote it and when. */
const NOTE_KEY = /^note(?: by (\S+))? at (\S+)$/i;
/** A line `Acceptance criteria:` (or in bold) in an item's text: the checklist under it, up to a blank line, is its criteria. */
const CRITERIA_LABEL = /^(?:\*\*|__)?acceptance criteria:?(?:\*\*|__)?:?$/i;
/** What a label may be (docs/API.md): the export writes them so, a `gh` label is made so. */
const LABEL = /^[a-z0-9._:/-]{1,40}$/;
const FENCE = /^(`{3,}|~{3,})/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?$/;
/** `---`, `***`, `___`: a rule, which ends the label above it. */
const THEMATIC_BREAK = /^([-*_])(?:\s*\1){2,}$/;
/** A paragraph that is only bold text, `**Backend**` or `**Backend:**`: the label of the items under it. */
const BOLD_LABEL = /^(?:\*\*|__)([^*_]+?):?(?:\*\*|__):?$/;
/** What an item's text starts after: the checkbox and its space, `[ ] `. */
const CHECKBOX_WIDTH = 4;

const indentOf = (text: string) => /^\s*/.exec(text)![0].replace(/\t/g, "    ").length;
const isTaskId = (id: string) => id.length <= 64 && ID_CHARACTERS.test(id) && !ONLY_DOTS.test(id);
const firstLineOf = (text: string) => text.split("\n", 1)[0]!;
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Descriptions as an editor leaves them: no trailing spaces, no trailing blank lines. */
export function normalizeDescription(text: string): string {
  return text
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n")
    .trimEnd();
}

/** `md-` and 10 hex digits of sha256 over the item's place (headings, enclosing plain items, its parent's ID) and text. */
export function derivedTaskId(path: string[], text: string): string {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update([...path, text].map((part) => part.replace(/\s+/g, " ").trim()).join("\n"));
  return `md-${hasher.digest("hex").slice(0, 10)}`;
}

function raiseCounter(counters: Counters, type: string, number: number, line: number): void {
  if (!ARTIFACT_TYPE.test(type)) return;
  if ((counters.get(type)?.number ?? -1) < number) counters.set(type, { number, line });
}

/** Notes the artifact IDs `text` mentions outside code spans, link targets and URLs. */
function noteArtifactIds(text: string, line: number, mentions: Counters): void {
  const prose = text
    .replace(/`[^`]*`/g, " ")
    .replace(/\]\([^)]*\)/g, "]")
    .replace(/<?https?:\/\/\S+/g, " ");
  for (const [, type, digits] of prose.matchAll(ARTIFACT_MENTION)) raiseCounter(mentions, type!, Number(digits), line);
}

/** Whether a line of a description would read back as something other than text (the export escapes it with `\`). */
function looksLikeMarkup(text: string): boolean {
  const item = LIST_ITEM.exec(text);
  if (item && (CHECKBOX.test(item[2] ?? "") || NOT_A_CHECKBOX.test(item[2] ?? "") || METADATA.test(text))) return true;
  if (/^[-*+]\[/.test(text)) return true;
  return text.startsWith("\\") && looksLikeMarkup(text.slice(1));
}

/** Escapes the lines of a description or note that would read back as markup; code blocks stay as they are. */
function escapeLines(lines: string[]): string[] {
  let fence: string | undefined;
  return lines.map((line) => {
    const content = line.trimStart();
    if (fence) {
      if (content.startsWith(fence)) fence = undefined;
      return line;
    }
    fence = FENCE.exec(content)?.[1];
    return fence ? line : escapeLine(line);
  });
}

function escapeLine(line: string): string {
  const indent = /^\s*/.exec(line)![0];
  return looksLikeMarkup(line.slice(indent.length)) ? `${indent}\\${line.slice(indent.length)}` : line;
}

function unescapeLine(line: string): string {
  const indent = /^\s*/.exec(line)![0];
  const rest = line.slice(indent.length);
  return rest.startsWith("\\") && looksLikeMarkup(rest.slice(1)) ? indent + rest.slice(1) : line;
}

/** Where an item sits: the headings above it (part of its derived ID) and the bold label under them (not). */
interface Section {
  path: string[];
  label?: string;
}

interface MetadataEntry {
  key: string;
  line: number;
  lines: string[];
  contentColumn: number;
  /** The checklist under `- acceptance criteria:`. */
  criteria: Criterion[];
}

interface DraftTask extends FileTask {
  /** The item's lines after its first, dedented. */
  body: string[];
  contentColumn: number;
  /** The headings, label and plain list items it sat under: one context line of its description. */
  context: string[];
  metadata: MetadataEntry[];
}

/** The list items open at the current line, innermost last. */
type OpenBlock =
  | { kind: "task"; indent: number; task: DraftTask }
  | { kind: "plain"; indent: number; text: string }
  | { kind: "metadata"; indent: number; entry: MetadataEntry; untilBlankLine?: boolean }
  | { kind: "criterion"; indent: number; criterion: Criterion; contentColumn: number };

/** Reads a markdown file line by line (GitHub-flavoured task lists); see parseMarkdown. */
class MarkdownReader {
  readonly parsed: ParsedFile = parsedFile("markdown");
  private readonly drafts: DraftTask[] = [];
  private readonly headings: string[] = [];
  private section: Section = { path: [] };
  /** How often each derived ID has come up: a repeated item's place gets its occurrence number. */
  private readonly occurrences = new Map<string, number>();
  private readonly open: OpenBlock[] = [];
  private fence?: { marker: string; owner: OpenBlock | undefined };
  private blankLines = 0;
  /** The task whose paragraph the previous line was: a line that starts no block continues it, indented or not. */
  private paragraphOf?: DraftTask;

  /**
   * An export of ours: its items' text is as the tracker has it. Its headings are the sections of the
   * tasks under them (`sectionsInHeadings`), or, in an export before 0.3.0, status groups.
   */
  constructor(
    readonly isExport: boolean,
    readonly sectionsInHeadings = !isExport,
  ) {
    if (isExport) this.parsed.format = "export";
  }

  private problem(line: number, message: string): void {
    this.parsed.problems.push({ line, message });
  }

  private warning(line: number, message: string): void {
    this.parsed.warnings.push({ line, message });
  }

  readLine(raw: string, line: number): void {
    const text = raw.trimEnd();
    const continued = this.paragraphOf;
    this.paragraphOf = undefined;
    if (this.fence) {
      const { marker, owner } = this.fence;
      // A code block inside a list item ends with the item, closed or not.
      const itemEnded = owner !== undefined && text !== "" && indentOf(text) <= owner.indent;
      if (!itemEnded) {
        if (text.trimStart().startsWith(marker)) this.fence = undefined;
        return this.addText(text, owner, true);
      }
      this.fence = undefined;
    }
    if (!text) return this.blankLine();
    noteArtifactIds(text, line, this.parsed.mentions);
    const indent = indentOf(text);
    const content = text.trimStart();
    if (CRITERIA_LABEL.test(content) && this.criteriaLabel(indent, line)) return;
    if (continued && indent < continued.contentColumn && !startsBlock(content)) {
      // A lazy continuation line, as CommonMark has it: the item's text wrapped without indentation.
      continued.body.push(unescapeLine(content));
      this.paragraphOf = continued;
      return;
    }
    while (this.open.length && this.open.at(-1)!.indent >= indent) this.open.pop();

    const heading = this.open.length === 0 ? HEADING.exec(text) : null;
    if (heading) return this.startSection(heading[1]!.length, heading[2] ?? "");
    const fence = FENCE.exec(content);
    if (fence) {
      this.fence = { marker: fence[1]!, owner: this.open.at(-1) };
      return this.addText(text, this.open.at(-1));
    }
    if (/^[-*+]\[[ xX]\]/.test(content))
      return this.problem(
        line,
        `write a space between the list marker and the checkbox: ${JSON.stringify(content.slice(0, 40))}`,
      );
    const item = LIST_ITEM.exec(content);
    if (!item) return this.addText(text, this.open.at(-1));
    this.listItem(content, item[1]!.length, item[2] ?? "", indent, line);
  }

  private blankLine(): void {
    const label = this.open.findIndex((block) => block.kind === "metadata" && block.untilBlankLine);
    if (label >= 0) this.open.length = label;
    this.addText("", this.open.at(-1));
  }

  /** `Acceptance criteria:` in an item's text: the checkboxes under it are criteria, not steps. False when no item holds it. */
  private criteriaLabel(indent: number, line: number): boolean {
    const kept = this.open.findIndex((block) => block.indent >= indent);
    const owner = (kept === -1 ? this.open : this.open.slice(0, kept)).at(-1);
    if (owner?.kind !== "task") return false;
    if (kept >= 0) this.open.length = kept;
    const entry: MetadataEntry = { key: "acceptance criteria", line, lines: [""], contentColumn: indent, criteria: [] };
    owner.task.metadata.push(entry);
    // One column less than the label, so that a checklist at the label's own indentation is under it.
    this.open.push({ kind: "metadata", indent: indent - 1, entry, untilBlankLine: true });
    this.blankLines = 0;
    return true;
  }

  private startSection(level: number, title: string): void {
    this.blankLines = 0;
    this.headings.length = level - 1;
    this.headings[level - 1] = title.trim();
    this.section = { path: this.sectionsInHeadings ? this.headings.filter(Boolean) : [] };
  }

  private listItem(content: string, markerLength: number, itemText: string, indent: number, line: number): void {
    // Blank lines before a new task or metadata entry end the text before them: they belong to nobody.
    if (CHECKBOX.test(itemText) || ODD_CHECKBOX.test(itemText) || METADATA.test(content)) this.blankLines = 0;
    const contentColumn = indent + markerLength + 1;
    const checkbox = CHECKBOX.exec(itemText) ?? ODD_CHECKBOX.exec(itemText);
    const innermost = this.open.at(-1);
    if (checkbox && innermost?.kind === "metadata" && innermost.entry.key === "acceptance criteria") {
      const criterion = { text: (checkbox[2] ?? "").trim(), done: checkbox[1]!.toLowerCase() === "x" };
      innermost.entry.criteria.push(criterion);
      this.open.push({ kind: "criterion", indent, criterion, contentColumn: contentColumn + CHECKBOX_WIDTH });
      return;
    }
    if (checkbox) {
      const mark = checkbox[1]!;
      if (mark !== " " && mark !== "-" && mark.toLowerCase() !== "x") this.oddMark(mark, line);
      const status = mark.toLowerCase() === "x" ? "completed" : mark === "-" ? "cancelled" : "pending";
      const task = this.taskItem(status, (checkbox[2] ?? "").trim(), line, contentColumn);
      this.open.push({ kind: "task", indent, task });
      this.paragraphOf = task;
      return;
    }
    if (/^\[[ xX]\]\S/.test(itemText))
      return this.problem(line, `write a space after the checkbox: ${JSON.stringify(itemText.slice(0, 40))}`);
    const notACheckbox = NOT_A_CHECKBOX.exec(itemText);
    if (notACheckbox) {
      return this.problem(line, `"[${notACheckbox[1]}]" is not a task checkbox; write "[ ]" (pending) or "[x]" (completed)`);
    }
    const parent = this.open.at(-1);
    const metadata = parent?.kind === "task" ? METADATA.exec(content) : null;
    if (parent?.kind === "task" && metadata) {
      const entry: MetadataEntry = { key: metadata[1]!, line, lines: [metadata[2] ?? ""], contentColumn, criteria: [] };
      if (!NOTE_KEY.test(entry.key)) entry.key = entry.key.toLowerCase();
      parent.task.metadata.push(entry);
      this.open.push({ kind: "metadata", indent, entry });
      return;
    }
    this.addText(" ".repeat(indent) + content, parent);
    this.open.push({ kind: "plain", indent, text: itemText.trim() });
  }

  private oddMark(mark: string, line: number): void {
    this.warning(line, `"[${mark}]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`);
  }

  private taskItem(status: FileTask["status"], itemText: string, line: number, contentColumn: number): DraftTask {
    let text = itemText;
    let taskId: string | undefined;
    const idMatch = ITEM_ID.exec(text);
    if (idMatch) {
      taskId = idMatch[1] ?? idMatch[2] ?? idMatch[3]!;
      text = text.slice(idMatch[0].length).trim();
      if (!isTaskId(taskId))
        this.problem(line, `${JSON.stringify(taskId)} is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`);
      const artifact = ARTIFACT_ID.exec(taskId);
      if (artifact) raiseCounter(this.parsed.counters, artifact[1]!, Number(artifact[2]), line);
    }
    const parent = this.open.findLast((block) => block.kind === "task");
    // A step is as urgent as its item, unless it says otherwise.
    let priority: FileTask["priority"] = parent?.kind === "task" ? parent.task.priority : "medium";
    const priorityMatch = PRIORITY_SUFFIX.exec(text);
    if (priorityMatch) {
      priority = priorityMatch[1] as FileTask["priority"];
      text = text.slice(0, priorityMatch.index);
    }
    if (!text) this.problem(line, "the item has no text: write what is to be done after the checkbox");
    // A step's place is its parent's ID, not its text: rewording an item with an ID keeps its steps' IDs.
    const enclosing = this.open.flatMap((block) =>
      block.kind === "task" ? [block.task.task_id] : block.kind === "plain" ? [block.text] : [],
    );
    const plainItems = this.open.flatMap((block) => (block.kind === "plain" ? [block.text] : []));
    const task: DraftTask = {
      task_id: taskId ?? this.derivedId([...this.section.path, ...enclosing], text),
      line,
      status,
      priority,
      description: text,
      depends_on: [],
      inputs: [],
      outputs: [],
      completion_notes: "",
      ...(parent?.kind === "task" && { parent_id: parent.task.task_id }),
      labels: [],
      acceptance_criteria: [],
      notes: [],
      body: [],
      contentColumn,
      context: [...this.section.path, ...(this.section.label ? [this.section.label] : []), ...plainItems],
      metadata: [],
    };
    this.drafts.push(task);
    return task;
  }

  /** The item's derived ID; the second `- [ ] a` in the same place is told apart by its occurrence number. */
  private derivedId(place: string[], text: string): string {
    const first = derivedTaskId(place, text);
    const occurrence = (this.occurrences.get(first) ?? 0) + 1;
    this.occurrences.set(first, occurrence);
    return occurrence === 1 ? first : derivedTaskId([...place, `#${occurrence}`], text);
  }

  /**
   * A line of text belongs to the innermost open task or metadata entry; else it is the section's text,
   * which no task copies: only a bold label there (`**Backend**`) is kept, for the items under it.
   * Blank lines outside code blocks wait for the next text, so they go where it goes.
   */
  private addText(text: string, innermost: OpenBlock | undefined, inCodeBlock = false): void {
    if (!text && !inCodeBlock) {
      this.blankLines++;
      return;
    }
    const owner = innermost?.kind === "plain" ? this.open.findLast((block) => block.kind === "task") : innermost;
    const blanks = Array<string>(this.blankLines).fill("");
    this.blankLines = 0;
    const dedent = (column: number) => {
      const line = text.replace(new RegExp(`^ {0,${column}}`), "");
      return inCodeBlock ? line : unescapeLine(line);
    };
    if (owner?.kind === "criterion") owner.criterion.text += `\n${[...blanks, dedent(owner.contentColumn)].join("\n")}`;
    else if (owner?.kind === "metadata") owner.entry.lines.push(...blanks, dedent(owner.entry.contentColumn));
    else if (owner?.kind === "task") {
      owner.task.body.push(...blanks, dedent(owner.task.contentColumn));
      if (innermost === owner && !inCodeBlock) this.paragraphOf = owner.task;
    } else if (!this.isExport) {
      const label = BOLD_LABEL.exec(text.trim());
      if (label) this.section = { path: this.section.path, label: label[1]!.trim() };
      else if (THEMATIC_BREAK.test(text.trim())) this.section = { path: this.section.path };
    }
  }

  finish(): ParsedFile {
    for (const draft of this.drafts) this.parsed.tasks.push(this.finishTask(draft));
    return this.parsed;
  }

  private finishTask(draft: DraftTask): FileTask {
    const { body, contentColumn: _, context, metadata, ...task } = draft;
    const lines = this.isExport ? body : dedentWrapped(body);
    let description = normalizeDescription([task.description, ...lines].join("\n"));
    // An export writes a section line itself where its headings cannot say it (a step placed otherwise than its item).
    const writesItsOwn = this.isExport && SECTION_LINE.test(description);
    if (context.length && !writesItsOwn) description += `\n\nSection: ${context.join(SECTION_SEPARATOR)}`;
    const result: FileTask = { ...task, description };
    for (const entry of metadata) this.readMetadata(result, entry);
    return result;
  }

  private readMetadata(result: FileTask, entry: MetadataEntry): void {
    const value = normalizeDescription(entry.lines.join("\n"));
    const note = NOTE_KEY.exec(entry.key);
    if (note) result.notes.push({ at: note[2]!, by: note[1] ?? null, text: value });
    else if (entry.key === "labels") result.labels = this.labelsOf(value, entry.line);
    else if (entry.key === "acceptance criteria")
      result.acceptance_criteria = entry.criteria.map(({ text, done }) => ({ text: normalizeDescription(text), done }));
    else if (entry.key === "completion notes") result.completion_notes = value;
    else if (entry.key === "inputs") result.inputs = value.split(/,\s*/).filter(Boolean);
    else if (entry.key === "outputs") result.outputs = value.split(/,\s*/).filter(Boolean);
    else if (entry.key === "depends on") {
      for (const id of value.split(/[,\s]+/).filter(Boolean)) {
        if (!isTaskId(id))
          this.problem(
            entry.line,
            `depends on ${JSON.stringify(id)}, which is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`,
          );
        else if (!result.depends_on.includes(id)) result.depends_on.push(id);
      }
    }
  }

  /** `- labels: backend, bug`: a set, lower-cased, as the tracker keeps it. */
  private labelsOf(value: string, line: number): string[] {
    const labels = [
      ...new Set(
        value
          .toLowerCase()
          .split(/[,\s]+/)
          .filter(Boolean),
      ),
    ].sort();
    for (const label of labels) {
      if (!LABEL.test(label)) this.problem(line, `label ${JSON.stringify(label)} is not 1 to 40 characters of a-z 0-9 . _ - : /`);
    }
    if (labels.length > 20) this.problem(line, `${labels.length} labels; a task holds at most 20`);
    return labels;
  }
}

/** Whether a line starts a block of its own (an item, a heading, a code block, a rule, a quote, a comment) rather than continue a paragraph. */
function startsBlock(content: string): boolean {
  return (
    LIST_ITEM.test(content) ||
    HEADING.test(content) ||
    FENCE.test(content) ||
    THEMATIC_BREAK.test(content) ||
    /^(?:>|[-*+]\[|<!--)/.test(content)
  );
}

/**
 * An item's lines wrapped under its text (`- [ ] Long item` / `      that wraps`) lose the indentation
 * they share, up to the checkbox's width: the description reads as the item's text did.
 */
function dedentWrapped(body: string[]): string[] {
  const indents = body.filter((line) => line.trim()).map(indentOf);
  const shared = Math.min(CHECKBOX_WIDTH, ...indents);
  return shared > 0 ? body.map((line) => line.replace(new RegExp(`^ {0,${shared}}`), "")) : body;
}

/**
 * GitHub-flavoured markdown task lists: `- [ ]` is a pending task, `- [x]` a completed one, `- [-]` a
 * cancelled one, another mark (`[/]`, `[~]`) a pending one with a warning; items nested under an item
 * are its steps (its children, as urgent as it unless they say otherwise); the headings, bold label and
 * plain items above an item end its description as one line. Sub-bullets of an item are its metadata
 * (dependencies, labels, criteria, notes …). Code blocks are text. Problems and warnings carry the line
 * they are on.
 */
export function parseMarkdown(text: string): ParsedFile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  const isExport = lines[0]?.startsWith(EXPORT_MARKER) ?? false;
  const reader = new MarkdownReader(isExport, !isExport || lines[0]!.includes(SECTIONS_MARK));
  lines.forEach((line, index) => reader.readLine(line, index + 1));
  return checkFileTasks(reader.finish());
}

const GITHUB_PRIORITIES: Record<string, FileTask["priority"]> = {
  critical: "high",
  urgent: "high",
  high: "high",
  p0: "high",
  p1: "high",
  medium: "medium",
  normal: "medium",
  p2: "medium",
  low: "low",
  p3: "low",
  p4: "low",
};

const GitHubIssue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullish(),
  state: z.string(),
  labels: z.array(z.object({ name: z.string() })).default([]),
});

/** What `gh issue list --state all --json number,title,body,state,labels` prints: task `gh-<number>` per issue. */
export function parseGitHubIssues(issues: unknown[]): ParsedFile {
  const parsed = parsedFile("github");
  issues.forEach((value, index) => {
    const result = GitHubIssue.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return parsed.problems.push({
        line: 0,
        message: `issue ${index + 1} of the list: ${issue.path.join(".") || "the issue"}: ${issue.message}`,
      });
    }
    const { number, title, body, state, labels } = result.data;
    const priorities = labels.flatMap(({ name }) =>
      /^priority:\s*/i.test(name) ? [name.replace(/^priority:\s*/i, "").toLowerCase()] : [],
    );
    const priority = priorities.map((name) => GITHUB_PRIORITIES[name]).find(Boolean) ?? "medium";
    if (priorities.length && !priorities.some((name) => GITHUB_PRIORITIES[name])) {
      parsed.problems.push({
        line: 0,
        message: `issue #${number}: label priority:${priorities[0]} is not a priority; use priority:high, priority:medium or priority:low`,
      });
    }
    let description = normalizeDescription(`${title.trim()}\n\n${(body ?? "").replace(/\r\n?/g, "\n")}`);
    if (description.length > MAX_TEXT)
      description = `${description.slice(0, MAX_TEXT - 60)}\n\n…(cut: the rest is in issue #${number})`;
    if (!title.trim()) parsed.problems.push({ line: 0, message: `issue #${number} has no title` });
    noteArtifactIds(description, 0, parsed.mentions);
    const closed = state.toUpperCase() === "CLOSED";
    parsed.tasks.push({
      task_id: `gh-${number}`,
      line: 0,
      status: closed ? "completed" : "pending",
      priority,
      description,
      depends_on: [],
      inputs: [],
      outputs: [],
      completion_notes: closed ? `Closed on GitHub as issue #${number}` : "",
      labels: taskLabelsOf(number, labels, parsed.warnings),
      acceptance_criteria: [],
      notes: [],
    });
  });
  return checkFileTasks(parsed);
}

/**
 * An issue's labels as task labels: lower-cased, spaces as `-` (`Good first issue` is `good-first-issue`),
 * other characters a label may not hold left out; `priority:*` is the priority, not a label.
 */
function taskLabelsOf(issue: number, labels: { name: string }[], warnings: FileProblem[]): string[] {
  const names = new Set<string>();
  for (const { name } of labels) {
    if (/^priority:/i.test(name)) continue;
    const label = name
      .toLowerCase()
      .trim()
      .replace(/\s+/g, "-")
      .replace(/[^a-z0-9._:/-]/g, "");
    if (LABEL.test(label)) names.add(label);
    else warnings.push({ line: 0, message: `issue #${issue}: label ${JSON.stringify(name)} cannot be a task label; left out` });
  }
  const sorted = [...names].sort();
  if (sorted.length > 20)
    warnings.push({ line: 0, message: `issue #${issue}: ${sorted.length} labels; the task keeps the first 20 by name` });
  return sorted.slice(0, 20);
}

const ExportedTask = z.object({
  task_id: z.string(),
  description: z.string(),
  status: z.enum(TASK_STATUSES),
  priority: z.enum(PRIORITIES).default("medium"),
  depends_on: z.array(z.string()).default([]),
  inputs: z.array(z.string()).default([]),
  outputs: z.array(z.string()).default([]),
  completion_notes: z.string().nullish(),
  labels: z.array(z.string()).default([]),
  parent_id: z.string().nullish(),
  acceptance_criteria: z.array(z.object({ text: z.string(), done: z.boolean() })).default([]),
  notes: z.array(z.object({ at: z.string(), by: z.string().nullable(), text: z.string() })).default([]),
});

/** `export --format json` read back: its tasks as they were (an in-progress task comes back pending). */
export function parseExportJson(value: { tasks: unknown[] }): ParsedFile {
  const parsed = parsedFile("export");
  value.tasks.forEach((item, index) => {
    const result = ExportedTask.safeParse(item);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return parsed.problems.push({ line: 0, message: `tasks[${index}].${issue.path.join(".")}: ${issue.message}` });
    }
    const task = result.data;
    if (!isTaskId(task.task_id))
      parsed.problems.push({
        line: 0,
        message: `tasks[${index}].task_id ${JSON.stringify(task.task_id)} is not a valid task ID`,
      });
    const artifact = ARTIFACT_ID.exec(task.task_id);
    if (artifact) raiseCounter(parsed.counters, artifact[1]!, Number(artifact[2]), 0);
    noteArtifactIds(task.description, 0, parsed.mentions);
    const completed = task.status === "completed";
    const { parent_id, ...rest } = task;
    parsed.tasks.push({
      ...rest,
      ...(parent_id && { parent_id }),
      line: 0,
      status: task.status === "in_progress" ? "pending" : task.status,
      completion_notes: completed ? (task.completion_notes ?? "") : "",
    });
  });
  return checkFileTasks(parsed);
}

/** JSON by its first character (an array: `gh issue list`; an object with `tasks`: our export), markdown otherwise. */
export function parseTaskFile(text: string): ParsedFile {
  const start = text.replace(/^\uFEFF/, "").trimStart();
  if (!start.startsWith("[") && !start.startsWith("{")) return parseMarkdown(text);
  let value: unknown;
  try {
    value = JSON.parse(start);
  } catch (error) {
    return parsedFile("github", [{ line: 0, message: `the file starts like JSON but is not: ${(error as Error).message}` }]);
  }
  if (Array.isArray(value)) return parseGitHubIssues(value);
  if (value && typeof value === "object" && Array.isArray((value as { tasks?: unknown }).tasks))
    return parseExportJson(value as { tasks: unknown[] });
  const problem = {
    line: 0,
    message:
      "JSON input must be the array `gh issue list --json number,title,body,state,labels` prints, or an object with tasks (an export)",
  };
  return parsedFile("github", [problem]);
}

const where = (task: FileTask) => (task.line ? `line ${task.line}` : task.task_id);

/**
 * What is wrong among the file's own tasks: an ID written twice, a dependency cycle, a completed task
 * waiting for a pending one. (A repeated item without an ID is no problem: its derived ID differs.)
 */
function checkFileTasks(parsed: ParsedFile): ParsedFile {
  const byId = new Map<string, FileTask>();
  for (const task of parsed.tasks) {
    const first = byId.get(task.task_id);
    if (!first) byId.set(task.task_id, task);
    else parsed.problems.push({ line: task.line, message: `task ID ${task.task_id} is used already (${where(first)})` });
  }
  for (const task of parsed.tasks) {
    const problem = (message: string) => parsed.problems.push({ line: task.line, message: `${task.task_id}: ${message}` });
    if (task.description.length > MAX_TEXT)
      problem(`its description is ${task.description.length} characters (its section line included); at most ${MAX_TEXT}`);
    if (task.completion_notes.length > MAX_TEXT)
      problem(`its completion notes are ${task.completion_notes.length} characters; at most ${MAX_TEXT}`);
    if ([task.description, task.completion_notes, ...task.inputs, ...task.outputs].some((text) => text.includes("\0")))
      problem("its text holds a NUL character");
    if (task.acceptance_criteria.length > 50)
      problem(`it has ${task.acceptance_criteria.length} acceptance criteria; at most 50`);
    const long = task.acceptance_criteria.findIndex(({ text }) => !text || text.length > 1000);
    if (long >= 0) problem(`its acceptance criterion ${long + 1} must be 1 to 1,000 characters`);
  }
  checkCompletedTasks(parsed, byId);
  const cycle = findCycle(parsed.tasks, byId);
  if (cycle) {
    const path = cycle.map((task) => `${task.task_id} (${where(task)})`).join(" → ");
    parsed.problems.push({ line: cycle[0]!.line, message: `dependency cycle: ${path} → ${cycle[0]!.task_id}` });
  }
  parsed.problems.sort((a, b) => a.line - b.line);
  return parsed;
}

/** A task checked in the file must be done: its dependencies, its steps and its acceptance criteria too. */
function checkCompletedTasks(parsed: ParsedFile, byId: Map<string, FileTask>): void {
  const problem = (task: FileTask, message: string) =>
    parsed.problems.push({ line: task.line, message: `${task.task_id} is checked but ${message}` });
  for (const task of parsed.tasks) {
    const parent = task.parent_id ? byId.get(task.parent_id) : undefined;
    if (parent?.status === "completed" && task.status === "pending")
      problem(parent, `its step ${task.task_id} (${where(task)}) is not; check the step, or mark it "[-]" (cancelled)`);
    if (task.status !== "completed") continue;
    for (const id of task.depends_on) {
      const step = byId.get(id);
      if (step?.status === "pending")
        problem(task, `depends on ${id} (${where(step)}), which is not; a completed task may depend only on completed ones`);
    }
    const open = task.acceptance_criteria.flatMap(({ text, done }, index) =>
      done ? [] : [`${index + 1}. ${JSON.stringify(text)}`],
    );
    if (open.length) problem(task, `its acceptance criteria are not all ticked off: ${open.join(", ")}`);
  }
}

/** The first cycle among the tasks' dependencies, as the tasks along it, or undefined. */
function findCycle(tasks: FileTask[], byId: Map<string, FileTask>): FileTask[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const stack: FileTask[] = [];
  const visit = (task: FileTask): FileTask[] | undefined => {
    if (state.get(task.task_id) === "done") return undefined;
    if (state.get(task.task_id) === "visiting") return stack.slice(stack.indexOf(task));
    state.set(task.task_id, "visiting");
    stack.push(task);
    for (const id of task.depends_on) {
      const next = byId.get(id);
      const cycle = next && visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(task.task_id, "done");
    return undefined;
  };
  for (const task of tasks) {
    const cycle = visit(task);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The tasks with the ones `before` names first, otherwise in file order. */
function ordered(tasks: FileTask[], before: (task: FileTask) => (string | undefined)[]): FileTask[] {
  const byId = new Map(tasks.map((task) => [task.task_id, task]));
  const result: FileTask[] = [];
  const placed = new Set<string>();
  const place = (task: FileTask) => {
    if (placed.has(task.task_id)) return;
    placed.add(task.task_id);
    for (const id of before(task)) {
      const earlier = id === undefined ? undefined : byId.get(id);
      if (earlier) place(earlier);
    }
    result.push(task);
  };
  tasks.forEach(place);
  return result;
}

/** The order to add tasks in: dependencies and parents first (a later batch may name them). */
const inAddingOrder = (tasks: FileTask[]) => ordered(tasks, (task) => [...task.depends_on, task.parent_id]);

/** The order to finish tasks in: dependencies and steps first (a parent waits for its steps). */
function inFinishingOrder(tasks: FileTask[]): FileTask[] {
  const steps = new Map<string, string[]>();
  for (const task of tasks) if (task.parent_id) steps.set(task.parent_id, [...(steps.get(task.parent_id) ?? []), task.task_id]);
  return ordered(tasks, (task) => [...task.depends_on, ...(steps.get(task.task_id) ?? [])]);
}

// What an import does to a project: computed from the file and the tracker, printed, then carried out.

/** What a PATCH may change, in the order the plan says them. */
const EDITED_FIELDS = ["priority", "description", "labels", "parent_id", "depends_on", "acceptance_criteria"] as const;
export type EditedField = (typeof EDITED_FIELDS)[number];

export interface TaskEditPlan {
  task: FileTask;
  /** The fields the file says otherwise: the project's value and the file's. */
  changes: Partial<Record<EditedField, { from: unknown; to: unknown }>>;
  /** Checked (claimed and completed) or cancelled in the file, pending in the tracker. */
  status?: "completed" | "cancelled";
}

export interface ImportPlan {
  add: FileTask[];
  edit: TaskEditPlan[];
  /** `--archive`: the pending tasks of the file's earlier imports it no longer holds, to cancel. */
  archive: TrackedTask[];
  /** Their cancellation's reason (`No longer in TODO.md`). */
  archiveReason?: string;
  raise: { type: string; from: number; to: number; line: number }[];
  unchanged: number;
  /** What the import leaves as it is, and why. */
  notes: string[];
  problems: FileProblem[];
}

/** Compares the file with the tracker's tasks and counters: what to add, edit and raise, or why not. */
export function planImport(
  file: ParsedFile,
  existing: TrackedTask[],
  counters: Map<string, number>,
  archive = false,
): ImportPlan {
  const tracked = new Map(existing.map((task) => [task.task_id, task]));
  const inFile = new Map(file.tasks.map((task) => [task.task_id, task]));
  const plan: ImportPlan = { add: [], edit: [], archive: [], raise: [], unchanged: 0, notes: [], problems: [...file.problems] };
  const completedAfterImport = (id: string) => tracked.get(id)?.status === "completed" || inFile.get(id)?.status === "completed";

  for (const task of file.tasks) {
    for (const id of task.depends_on) {
      if (!inFile.has(id) && !tracked.has(id)) {
        plan.problems.push({
          line: task.line,
          message: `${task.task_id} depends on ${id}, which is neither in the file nor in the project`,
        });
      } else if (task.status === "completed" && !completedAfterImport(id) && !inFile.has(id)) {
        plan.problems.push({
          line: task.line,
          message: `${task.task_id} is checked but depends on ${id}, which is ${tracked.get(id)!.status} in the project`,
        });
      }
    }
    if (task.parent_id && !inFile.has(task.parent_id) && !tracked.has(task.parent_id))
      plan.problems.push({
        line: task.line,
        message: `${task.task_id} is a step of ${task.parent_id}, which is neither in the file nor in the project`,
      });
    const current = tracked.get(task.task_id);
    if (!current) plan.add.push(task);
    else compareWithTracker(task, current, plan);
  }
  planGone(file, existing, inFile, plan, archive);
  holdBackCompletions(plan, existing);
  // Counters of the types the file's items are named by, or the project has: not every `SHA-256` starts one.
  const raised = new Map(file.counters);
  for (const [type, mention] of file.mentions) {
    const known = counters.has(type) || file.counters.has(type);
    if (known && (raised.get(type)?.number ?? -1) < mention.number) raised.set(type, mention);
  }
  for (const [type, { number, line }] of raised) {
    const from = counters.get(type) ?? 0;
    if (number > from) plan.raise.push({ type, from, to: number, line });
  }
  plan.problems.sort((a, b) => a.line - b.line);
  return plan;
}

/**
 * A checked item the tracker would refuse to complete stays open, with a note: one whose step is open in
 * the project and not completed by this import (an agent may be at it), or whose criteria the project
 * has open and the file does not tick off.
 */
function holdBackCompletions(plan: ImportPlan, existing: TrackedTask[]): void {
  // Until nothing changes: an item held back holds back the item above it in turn.
  while (holdBackOnce(plan, existing));
  const unchanged = plan.edit.filter((edit) => !edit.status && !Object.keys(edit.changes).length);
  plan.edit = plan.edit.filter((edit) => !unchanged.includes(edit));
  plan.unchanged += unchanged.length;
}

function holdBackOnce(plan: ImportPlan, existing: TrackedTask[]): boolean {
  const finishing = new Set(plan.edit.filter((edit) => edit.status).map((edit) => edit.task.task_id));
  let held = false;
  for (const edit of plan.edit) {
    if (edit.status !== "completed") continue;
    const { task } = edit;
    const openSteps = existing.filter(
      (step) =>
        step.parent_id === task.task_id && ["pending", "in_progress"].includes(step.status) && !finishing.has(step.task_id),
    );
    const current = existing.find((tracked) => tracked.task_id === task.task_id);
    const criteria = (edit.changes.acceptance_criteria?.to as Criterion[] | undefined) ?? current?.acceptance_criteria ?? [];
    const openCriteria = criteria.filter((criterion) => !criterion.done).length;
    const why = openSteps.length
      ? `its step ${openSteps.map((step) => `${step.task_id} (${step.status})`).join(", ")} is not done in the project`
      : openCriteria
        ? `${openCriteria} of its acceptance criteria ${openCriteria === 1 ? "is" : "are"} open in the project`
        : undefined;
    if (!why) continue;
    edit.status = undefined;
    held = true;
    plan.notes.push(`${where(task)}: ${task.task_id} is checked, but ${why}: it stays open`);
  }
  return held;
}

/** The prefix of the IDs a format derives (`md-` of an item's text, `gh-` of an issue's number): how an import knows its own tasks. */
const DERIVED_PREFIX: Partial<Record<ParsedFile["format"], string>> = { markdown: "md-", github: "gh-" };

/**
 * The unfinished tasks of the project with the file's kind of derived ID that the file no longer holds:
 * cancelled with `--archive` (pending ones; an agent's task is left to it), else named in a note.
 */
function planGone(
  file: ParsedFile,
  existing: TrackedTask[],
  inFile: Map<string, FileTask>,
  plan: ImportPlan,
  archive: boolean,
): void {
  const prefix = DERIVED_PREFIX[file.format];
  const unfinished = (task: TrackedTask) => task.status === "pending" || task.status === "in_progress";
  const gone = existing.filter(
    (task) => prefix && task.task_id.startsWith(prefix) && !inFile.has(task.task_id) && unfinished(task),
  );
  const list = (tasks: TrackedTask[]) =>
    tasks
      .slice(0, 5)
      .map((task) => task.task_id)
      .join(", ") + (tasks.length > 5 ? ", …" : "");
  if (archive && file.tasks.length === 0) {
    plan.notes.push("--archive cancels nothing when the file holds no task: is it the right file?");
  } else if (archive) {
    plan.archive = gone.filter((task) => task.status === "pending");
    const held = gone.filter((task) => task.status === "in_progress");
    if (held.length)
      plan.notes.push(
        `${plural(held.length, "task")} no longer in this file ${held.length === 1 ? "is" : "are"} in progress, left to ${held.length === 1 ? "its holder" : "their holders"}: ${list(held)}`,
      );
  } else if (gone.length) {
    plan.notes.push(
      `${plural(gone.length, "task")} of the project with a derived ID ${gone.length === 1 ? "is" : "are"} not in this file (an item reworded or moved, or another file's): ${list(gone)}; --archive cancels ${gone.length === 1 ? "it" : "them"}`,
    );
  }
}

function compareWithTracker(task: FileTask, current: TrackedTask, plan: ImportPlan): void {
  const changes = changedFields(task, current);
  const edit: TaskEditPlan = { task, changes: {} };
  if (current.status === "completed" || current.status === "cancelled") {
    // Its priority no longer matters (a step's follows its item's, which may change): only its text is said.
    if (changes.description)
      plan.notes.push(
        `${where(task)}: ${task.task_id} is ${current.status} in the project, so its text and priority stay as they are there`,
      );
    if (current.status === "cancelled" && task.status !== "cancelled")
      plan.notes.push(`${where(task)}: ${task.task_id} is cancelled in the project: reopen it there to take it up again`);
  } else {
    edit.changes = changes;
    if (task.status !== "pending" && current.status === "pending") edit.status = task.status;
    if (task.status !== "pending" && current.status === "in_progress") {
      const marked = task.status === "completed" ? "checked" : "marked cancelled";
      plan.notes.push(
        `${where(task)}: ${task.task_id} is ${marked}, but ${current.claimed_by ?? "an agent"} is working on it: it is left to its holder`,
      );
    }
  }
  if (Object.keys(edit.changes).length || edit.status) plan.edit.push(edit);
  else plan.unchanged++;
}

/**
 * What the file says otherwise than the project, field by field. The content fields count only when the
 * tracker sends them (0.3.0 on): an older one knows none of them. Labels and criteria count only when the
 * file writes them: a TODO.md that never says labels leaves those given on the board as they are.
 */
function changedFields(task: FileTask, current: TrackedTask): TaskEditPlan["changes"] {
  const file: Record<EditedField, unknown> = {
    priority: task.priority,
    description: normalizeDescription(task.description),
    labels: [...task.labels].sort(),
    parent_id: task.parent_id ?? null,
    depends_on: [...task.depends_on].sort(),
    acceptance_criteria: task.acceptance_criteria,
  };
  const project: Record<EditedField, unknown> = {
    priority: current.priority,
    description: normalizeDescription(current.description),
    labels: current.labels && [...current.labels].sort(),
    parent_id: current.parent_id ?? null,
    depends_on: [...current.depends_on].sort(),
    acceptance_criteria: current.acceptance_criteria?.map(({ text, done }) => ({ text, done })),
  };
  const changes: TaskEditPlan["changes"] = {};
  for (const field of EDITED_FIELDS) {
    const known = field in current || !["labels", "parent_id", "acceptance_criteria"].includes(field);
    const unsaid = (field === "labels" || field === "acceptance_criteria") && task[field].length === 0;
    if (known && !unsaid && !Bun.deepEquals(file[field], project[field]))
      changes[field] = { from: current[field] ?? null, to: file[field] };
  }
  return changes;
}

/** The batch endpoint takes 500 tasks and 1 MiB at most: batches in adding order (as given), under both. */
export function batchesOf(tasks: FileTask[], project: string, maxTasks = 500, maxBytes = 900_000): Record<string, unknown>[][] {
  const batches: Record<string, unknown>[][] = [];
  let batch: Record<string, unknown>[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const input: Record<string, unknown> = {
      task_id: task.task_id,
      project_id: project,
      description: task.description,
      priority: task.priority,
      depends_on: task.depends_on,
      inputs: task.inputs,
      outputs: task.outputs,
      status: task.status,
      ...(task.status === "completed" && { completion_notes: task.completion_notes }),
      // Sent only when there is something to send: a tracker before 0.3.0 knows none of these fields.
      ...(task.parent_id && { parent_id: task.parent_id }),
      ...(task.labels.length && { labels: task.labels }),
      ...(task.acceptance_criteria.length && { acceptance_criteria: task.acceptance_criteria }),
      // A note without its author is the importer's: the batch takes a name or none.
      ...(task.notes.length && { notes: task.notes.map(({ at, by, text }) => ({ text, ...(at && { at }), ...(by && { by }) })) }),
    };
    const size = Buffer.byteLength(JSON.stringify(input)) + 1;
    if (batch.length && (batch.length === maxTasks || bytes + size > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(input);
    bytes += size;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

// The calls an import and an export make, through the same client (retries, timeouts, keys) as the tools.

const RegistryResponse = z.object({
  counters: z.array(z.object({ artifact_type: z.string(), last_assigned_id: z.number() })),
});

async function projectCounters(tracker: Tracker, project: string): Promise<Map<string, number>> {
  const registry = await tracker.read(RegistryResponse, `/ids/registry?${new URLSearchParams({ project })}`);
  return new Map(registry.counters.map((counter) => [counter.artifact_type, counter.last_assigned_id]));
}

/** What an import has done so far: if the service fails halfway, the user is told, and a re-run finishes it. */
interface ImportProgress {
  added: number;
  edited: number;
  archived: number;
}

/**
 * Carries a plan out: the new tasks batch by batch in dependency order, then the edits (dependencies
 * first), then the counters. The file was checked whole before, so the service refuses nothing in it
 * unless the project changed meanwhile or the service fails; a re-run then does only what is left.
 */
async function applyPlan(
  tracker: Tracker,
  host: TransferHost,
  project: string,
  plan: ImportPlan,
  progress: ImportProgress,
): Promise<void> {
  const inProject = `?project=${encodeURIComponent(project)}`;
  // In file order when one batch holds them all (the batch takes its tasks in any order), so that the
  // order they were added in, which the export follows, is the file's; else parents and dependencies first.
  const inOneBatch = batchesOf(plan.add, project);
  for (const tasks of inOneBatch.length === 1 ? inOneBatch : batchesOf(inAddingOrder(plan.add), project)) {
    await tracker.write("POST", "/tasks/batch", { tasks });
    progress.added += tasks.length;
  }
  const pathOf = (taskId: string) => `/tasks/${encodeURIComponent(taskId)}`;
  for (const { task, changes } of plan.edit) {
    if (!Object.keys(changes).length) continue;
    const body = Object.fromEntries(Object.entries(changes).map(([field, { to }]) => [field, to]));
    await tracker.write("PATCH", pathOf(task.task_id) + inProject, body);
    progress.edited++;
  }
  // Steps before their items: an item completes only when its steps are done.
  const statusEdits = new Map(plan.edit.filter((edit) => edit.status).map((edit) => [edit.task, edit]));
  for (const task of inFinishingOrder([...statusEdits.keys()])) {
    const { changes, status } = statusEdits.get(task)!;
    const path = `${pathOf(task.task_id)}/status${inProject}`;
    if (status === "completed") {
      await tracker.write("PUT", path, { status: "in_progress" });
      await tracker.write("PUT", path, { status: "completed", completion_notes: task.completion_notes });
    } else await tracker.write("PUT", path, { status: "cancelled" });
    if (!Object.keys(changes).length) progress.edited++;
  }
  for (const { task_id } of plan.archive) {
    await tracker.write("PUT", `${pathOf(task_id)}/status${inProject}`, {
      status: "cancelled",
      completion_notes: plan.archiveReason,
    });
    progress.archived++;
  }
  for (const { type, to } of plan.raise) {
    const path = `/ids/registry/${encodeURIComponent(project)}/${encodeURIComponent(type)}`;
    try {
      await tracker.write("PUT", path, { last_assigned_id: to });
    } catch (error) {
      // 409: the counter went past it since we read it, so there is nothing to raise.
      if (host.failureOf(error)?.status !== 409) throw error;
    }
  }
}

/** The plan in lines a person reads before (`--dry-run`) or after the import. */
export function describePlan(plan: ImportPlan, dryRun: boolean): string[] {
  const cut = (text: string, length = 70) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);
  const at = (task: FileTask) => (task.line ? `  (line ${task.line})` : "");
  const lines: string[] = [];
  const section = (title: string, count: number, noun: string) => {
    if (count) lines.push(`${dryRun ? `Would ${title.toLowerCase()}` : title} ${plural(count, noun)}:`);
  };
  section(dryRun ? "Add" : "Added", plan.add.length, "task");
  for (const task of plan.add) {
    const after = [
      task.parent_id ? `  under ${task.parent_id}` : "",
      task.depends_on.length ? `  after ${task.depends_on.join(", ")}` : "",
    ].join("");
    lines.push(
      `  + ${task.task_id.padEnd(14)} ${task.status.padEnd(9)} ${task.priority.padEnd(6)} ${cut(firstLineOf(task.description))}${after}${at(task)}`,
    );
  }
  section(dryRun ? "Change" : "Changed", plan.edit.length, "task");
  for (const { task, changes, status } of plan.edit) {
    const what = Object.entries(changes).map(([field, change]) => describeChange(field as EditedField, change, cut));
    if (status) what.push(`pending → ${status}`);
    lines.push(`  ~ ${task.task_id.padEnd(14)} ${what.join("; ")}${at(task)}`);
  }
  if (plan.archive.length)
    lines.push(`${dryRun ? "Would cancel" : "Cancelled"} ${plural(plan.archive.length, "task")} no longer in the file:`);
  for (const task of plan.archive) lines.push(`  - ${task.task_id.padEnd(14)} ${cut(firstLineOf(task.description))}`);
  section(dryRun ? "Raise" : "Raised", plan.raise.length, "ID counter");
  for (const { type, from, to, line } of plan.raise) {
    lines.push(
      `  ↑ ${type.padEnd(14)} ${from} → ${to} (next ${type}-${String(to + 1).padStart(3, "0")})${line ? `  (line ${line})` : ""}`,
    );
  }
  for (const note of plan.notes) lines.push(`Note: ${note}`);
  const archived = plan.archive.length ? `, ${dryRun ? "cancel" : "cancelled"} ${plan.archive.length}` : "";
  const counts = `${plural(plan.add.length, "task")}, ${dryRun ? "change" : "changed"} ${plan.edit.length}${archived}, ${dryRun ? "raise" : "raised"} ${plural(plan.raise.length, "ID counter")}; ${plan.unchanged} already up to date`;
  lines.push(dryRun ? `Dry run, nothing was changed: would add ${counts}.` : `Done: added ${counts}.`);
  return lines;
}

/** One change of a task as the plan says it: `priority medium → high`, `labels → backend, bug`. */
function describeChange(
  field: EditedField,
  { from, to }: { from: unknown; to: unknown },
  cut: (text: string, length?: number) => string,
): string {
  const ids = (value: unknown) => (Array.isArray(value) && value.length ? value.join(", ") : "none");
  switch (field) {
    case "priority":
      return `priority ${from} → ${to}`;
    case "description": {
      const text = String(to);
      return `description → ${JSON.stringify(cut(firstLineOf(text), 50))}${text.includes("\n") ? " (and more lines)" : ""}`;
    }
    case "labels":
      return `labels ${ids(from)} → ${ids(to)}`;
    case "parent_id":
      return `step of ${from ?? "nothing"} → ${to ?? "nothing"}`;
    case "depends_on":
      return `depends on ${ids(from)} → ${ids(to)}`;
    case "acceptance_criteria": {
      const list = to as Criterion[];
      return `acceptance criteria → ${list.length} (${list.filter((criterion) => criterion.done).length} done)`;
    }
  }
}

export interface CliIo {
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
  fetch?: typeof fetch;
}

/** The process's own environment, stdout and stderr. */
export const cliIo = (): CliIo => ({ env: process.env, out: (line) => console.log(line), err: (line) => console.error(line) });

class UsageError extends Error {
  override name = "UsageError";
}

/** `[FILE] --project P --flag --option VALUE`, the one shape both commands take. */
function parseCliArguments(host: TransferHost, command: string, argv: string[], flags: string[], options: string[]) {
  const values: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    if (!argument.startsWith("--")) {
      positional.push(argument);
      continue;
    }
    const [name, inline] = argument.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flags.includes(name) && inline === undefined) values[name] = true;
    else if (options.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${name} needs a value`);
      values[name] = value;
    } else throw new UsageError(`${command} does not take ${JSON.stringify(argument)}`);
  }
  const project = values["--project"];
  if (typeof project !== "string") throw new UsageError(`${command} needs --project P`);
  const problem = host.projectProblem(project);
  if (problem) throw new UsageError(`--project: ${problem}`);
  return { values, positional, project };
}

const IMPORT_USAGE = `${COMMAND} import FILE --project P [--dry-run] [--force] [--archive]`;
const EXPORT_USAGE = `${COMMAND} export --project P [--format markdown|json]`;

/**
 * Who the commands' changes are by, as the task's history names them: the person at the keyboard
 * (`USER`, else `LOGNAME`, in agent-ID characters), not the host and process an agent's server would
 * be; `TASK_TRACKING_AGENT_ID` when set says it explicitly. Undefined when none is set.
 */
export function importAuthor(env: Record<string, string | undefined>): string | undefined {
  if (env.TASK_TRACKING_AGENT_ID) return env.TASK_TRACKING_AGENT_ID;
  for (const name of ["USER", "LOGNAME"]) {
    const person = env[name]
      ?.replace(/[^A-Za-z0-9._:@-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 128);
    if (person) return person;
  }
  return undefined;
}

/**
 * A command's frame: its arguments (exit 2 when they are wrong), the configuration and the tracker,
 * and the service's failures (exit 1), each as one sentence on stderr.
 */
async function runCommand<T>(
  io: CliIo,
  host: TransferHost,
  usage: string,
  readArguments: () => T,
  work: (tracker: Tracker, args: T) => Promise<number>,
): Promise<number> {
  let args: T;
  try {
    args = readArguments();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${COMMAND}: ${error.message}\nUsage: ${usage}`);
    return 2;
  }
  try {
    const author = importAuthor(io.env);
    const env = author ? { ...io.env, TASK_TRACKING_AGENT_ID: author } : io.env;
    return await work(host.connect(env, io.fetch ?? fetch), args);
  } catch (error) {
    const failure = host.failureOf(error);
    if (!failure) throw error;
    io.err(failure.sentence);
    return 1;
  }
}

function readImportArguments(argv: string[], host: TransferHost) {
  const flags = ["--dry-run", "--force", "--archive"];
  const { positional, project, values } = parseCliArguments(host, "import", argv, flags, ["--project"]);
  if (positional.length !== 1)
    throw new UsageError(positional.length ? `import takes one FILE, not ${positional.length}` : "import needs a FILE");
  return {
    fileName: positional[0]!,
    project,
    dryRun: values["--dry-run"] === true,
    force: values["--force"] === true,
    archive: values["--archive"] === true,
  };
}

type ImportArguments = ReturnType<typeof readImportArguments>;

/**
 * `import FILE --project P [--dry-run] [--force] [--archive]`: checks the whole file against the
 * project first, and changes nothing when any of it is wrong, or when it would undo a change made in
 * the project since the last import (unless `--force`).
 */
export function runImport(argv: string[], io: CliIo, host: TransferHost): Promise<number> {
  return runCommand(
    io,
    host,
    IMPORT_USAGE,
    () => readImportArguments(argv, host),
    (tracker, args) => importFile(tracker, host, io, args),
  );
}

async function importFile(tracker: Tracker, host: TransferHost, io: CliIo, args: ImportArguments): Promise<number> {
  const { fileName, project, dryRun } = args;
  const file = await readTaskFile(fileName, io);
  if (!file) return 1;
  const plan = file.problems.length
    ? undefined
    : planImport(file, await tracker.tasks(project), await projectCounters(tracker, project), args.archive);
  const problems = plan?.problems ?? file.problems;
  if (problems.length) {
    for (const { line, message } of problems) io.err(`${fileName}${line ? `:${line}` : ""}: ${message}`);
    io.err(`Nothing was imported: ${plural(problems.length, "problem")} in ${fileName}.`);
    return 1;
  }
  if (plan!.archive.length) plan!.archiveReason = `No longer in ${basename(fileName)} (import --archive)`;
  if (!args.force) {
    const overwrites = await findOverwrites(tracker, project, plan!, importAuthor(io.env));
    if (overwrites.length) {
      for (const overwrite of overwrites)
        io.err(`${fileName}${overwrite.task.line ? `:${overwrite.task.line}` : ""}: ${overwrite.message}`);
      io.err(
        `Nothing was imported: the file would overwrite ${plural(overwrites.length, "change")} made in the project since it was last imported; ` +
          "change the file to match, or run the import with --force to overwrite them.",
      );
      return 1;
    }
  }
  if (file.tasks.length === 0) io.out(`${fileName} holds no task items ("- [ ] …" or "- [x] …" lines).`);
  if (!dryRun) await applyReporting(tracker, host, project, plan!, io);
  for (const line of describePlan(plan!, dryRun)) io.out(line);
  return 0;
}

/** The file parsed, its warnings printed; undefined when it cannot be read (said on stderr). */
async function readTaskFile(fileName: string, io: CliIo): Promise<ParsedFile | undefined> {
  let text: string;
  try {
    text = await Bun.file(fileName).text();
  } catch (error) {
    io.err(`cannot read ${fileName}: ${(error as { code?: string }).code ?? (error as Error).message}`);
    return undefined;
  }
  const file = parseTaskFile(text);
  for (const { line, message } of file.warnings) io.err(`${fileName}${line ? `:${line}` : ""}: warning: ${message}`);
  for (const task of file.tasks) {
    if (file.format === "markdown" && task.status === "completed" && !task.completion_notes)
      task.completion_notes = `Checked in ${basename(fileName)}`;
  }
  return file;
}

/** Carries the plan out; when the service fails halfway, says how far it got and that a re-run finishes it. */
async function applyReporting(tracker: Tracker, host: TransferHost, project: string, plan: ImportPlan, io: CliIo) {
  const progress: ImportProgress = { added: 0, edited: 0, archived: 0 };
  try {
    await applyPlan(tracker, host, project, plan, progress);
  } catch (error) {
    if (progress.added || progress.edited || progress.archived) {
      io.err(
        `Stopped after adding ${progress.added} of ${plan.add.length} tasks and changing ${progress.edited} of ${plan.edit.length}. ` +
          "Run the same import again to finish: it adds and changes only what is still missing.",
      );
    }
    throw error;
  }
}

const TaskEvents = z.object({
  events: z.array(
    z.object({
      event_id: z.number().optional(),
      type: z.string(),
      at: z.string(),
      agent_id: z.string().nullable(),
      details: z.record(z.string(), z.unknown()).nullish(),
    }),
  ),
});
export type TaskEvent = z.infer<typeof TaskEvents>["events"][number];

const eventsPath = (project: string, taskId: string) =>
  `/tasks/${encodeURIComponent(taskId)}/events?${new URLSearchParams({ project })}`;

/** A change made in the project since the last import that the import would undo. */
interface Overwrite {
  task: FileTask;
  message: string;
}

/** The changes the plan's edits would undo, from each edited task's history. */
async function findOverwrites(tracker: Tracker, project: string, plan: ImportPlan, author: string | undefined) {
  const overwrites: Overwrite[] = [];
  for (const edit of plan.edit) {
    const { events } = await tracker.read(TaskEvents, eventsPath(project, edit.task.task_id));
    overwrites.push(...overwritesOf(edit, events, author));
  }
  return overwrites;
}

/**
 * What of an edit undoes a change made since the task's last import: the events after the last one of
 * the import's author (or after the task was added), by anyone else, that changed a field the edit
 * changes, or reopened a task the edit finishes. The latest change of each field is named.
 */
export function overwritesOf(edit: TaskEditPlan, events: TaskEvent[], author: string | undefined): Overwrite[] {
  const since = events.findLastIndex((event) => event.type === "created" || (author !== undefined && event.agent_id === author));
  const latest = new Map<string, TaskEvent>();
  for (const event of events.slice(since + 1)) {
    if (event.type === "updated")
      for (const field of Object.keys(edit.changes)) if (event.details?.[field] !== undefined) latest.set(field, event);
    if (event.type === "reopened" && edit.status) latest.set("status", event);
  }
  const { task } = edit;
  const cut = (text: string, length = 70) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);
  return [...latest].map(([field, event]) => {
    const who = `${event.agent_id ?? "someone"} ${field === "status" ? "reopened it" : `changed its ${field.replace("_", " ")}`} at ${event.at}`;
    const would =
      field === "status"
        ? `pending → ${edit.status}`
        : describeChange(field as EditedField, edit.changes[field as EditedField]!, cut);
    return { task, message: `${task.task_id}: ${who}, since the last import; the import would undo it: ${would}` };
  });
}

/**
 * A project as markdown, which `import` reads back to the same tasks: the sections the tasks' descriptions
 * name become headings again (in the order they first come up), each step goes under its item, and each
 * task shows its labels, holder or completer, completion notes, acceptance criteria (a checklist under
 * `- acceptance criteria:`) and notes. Tasks come in the order given: the export's is the order they were
 * added, an imported file's file order.
 */
export function renderMarkdown(project: string, ordered: TrackedTask[]): string {
  const byId = new Map(ordered.map((task) => [task.task_id, task]));
  const steps = new Map<string, TrackedTask[]>();
  const items: { task: TrackedTask; path: string[] }[] = [];
  for (const task of ordered) {
    const parent = task.parent_id ? byId.get(task.parent_id) : undefined;
    if (parent && parent !== task) steps.set(parent.task_id, [...(steps.get(parent.task_id) ?? []), task]);
    else items.push({ task, path: sectionOf(task.description).path });
  }
  const lines = [
    `${EXPORT_MARKER}: project ${project}; ${SECTIONS_MARK}; \`${COMMAND} import FILE --project ${project}\` reads it back -->`,
  ];
  let current: string[] = [];
  for (const { task, path } of inSectionOrder(items)) {
    if (lines.length === 1 || !Bun.deepEquals(path, current)) lines.push(...headingsBetween(current, path));
    current = path;
    lines.push(...itemLines(task, { depth: 0, inherited: "medium", section: path, steps }));
  }
  return `${lines.join("\n")}\n`;
}

/** The headings a description's section line names, and the description without it; no headings when they would not read back as the line. */
function sectionOf(description: string): { path: string[]; rest: string } {
  const text = normalizeDescription(description);
  const match = SECTION_LINE.exec(text);
  if (!match) return { path: [], rest: text };
  const path = match[1]!.split(SECTION_SEPARATOR);
  const rest = text.slice(0, match.index);
  const asHeading = (part: string) => HEADING.exec(`# ${part}`)?.[2] === part && part.trim() === part && part !== "";
  return path.length <= 6 && path.every(asHeading) && rest === rest.trimEnd() ? { path, rest } : { path: [], rest: text };
}

/** The items grouped by section, sections in the order they first come up, a section's subsections under it. */
function inSectionOrder<T extends { path: string[] }>(items: T[]): T[] {
  const rank = new Map<string, number>();
  const prefixes = (path: string[]) => path.map((_, i) => path.slice(0, i + 1).join("\n"));
  for (const { path } of items) for (const prefix of prefixes(path)) if (!rank.has(prefix)) rank.set(prefix, rank.size);
  const key = (path: string[]) => prefixes(path).map((prefix) => rank.get(prefix)!);
  const compare = (a: number[], b: number[]) => {
    const at = a.findIndex((value, i) => value !== b[i]);
    return at === -1 ? a.length - b.length : at >= b.length ? 1 : a[at]! - b[at]!;
  };
  return [...items].sort((a, b) => compare(key(a.path), key(b.path)));
}

/** The headings that lead from one section to the next (`## Release 1.0` under an open `# TODO`). */
function headingsBetween(from: string[], to: string[]): string[] {
  let common = 0;
  while (common < from.length && common < to.length && from[common] === to[common]) common++;
  if (common === to.length && from.length !== to.length) common = Math.max(0, to.length - 1);
  const lines = to.slice(common).flatMap((part, i) => ["", `${"#".repeat(common + i + 1)} ${part}`]);
  return [...lines, ""];
}

interface ItemPlace {
  depth: number;
  /** The priority the item has when it names none: its parent's. */
  inherited: TrackedTask["priority"];
  /** The section the headings above it say. */
  section: string[];
  steps: Map<string, TrackedTask[]>;
}

function itemLines(task: TrackedTask, place: ItemPlace): string[] {
  const pad = "  ".repeat(place.depth);
  const id = ARTIFACT_ID.test(task.task_id) ? `**${task.task_id}**` : `**\`${task.task_id}\`**`;
  const own = sectionOf(task.description);
  // The headings say the section line; a step placed otherwise than its item keeps its own.
  const text = Bun.deepEquals(own.path, place.section) ? own.rest : normalizeDescription(task.description);
  const [first = "", ...rest] = text.split("\n");
  const endsLikePriority = PRIORITY_SUFFIX.test(first);
  const priority = task.priority !== place.inherited || endsLikePriority ? ` (${task.priority})` : "";
  const indent = (line: string) => (line ? pad + line : "");
  const description = escapeLines(rest).map((line) => indent(line && `  ${line}`));
  const metadata = metadataLines(task).map(indent);
  // The description's lines first, so that none indented past the item's text reads as part of a
  // metadata entry; after the metadata when the description leaves a code block open, which then ends
  // with the item, as in any markdown.
  const body = leavesCodeBlockOpen(rest) ? [...metadata, ...description] : [...description, ...metadata];
  const mark = task.status === "completed" ? "x" : task.status === "cancelled" ? "-" : " ";
  const steps = (place.steps.get(task.task_id) ?? []).flatMap((step) =>
    itemLines(step, { ...place, depth: place.depth + 1, inherited: task.priority }),
  );
  return [`${pad}- [${mark}] ${id} ${first}${priority}`, ...body, ...steps];
}

function metadataLines(task: TrackedTask): string[] {
  const lines: string[] = [];
  const metadata = (key: string, value: string) => {
    const [head, ...more] = value.split("\n");
    lines.push(`  - ${key}: ${head}`.trimEnd(), ...escapeLines(more).map((line) => (line ? `    ${line}` : "")));
  };
  if (task.depends_on.length) metadata("depends on", task.depends_on.join(", "));
  if (task.inputs.length) metadata("inputs", task.inputs.join(", "));
  if (task.outputs.length) metadata("outputs", task.outputs.join(", "));
  if (task.labels?.length) metadata("labels", task.labels.join(", "));
  const lease = typeof task.lease_expires_at === "string" ? ` (lease until ${task.lease_expires_at})` : "";
  const on = typeof task.completed_at === "string" ? ` on ${task.completed_at.slice(0, 10)}` : "";
  if (task.claimed_by && task.status === "completed") metadata("completed by", task.claimed_by + on);
  else if (task.claimed_by) metadata("held by", task.claimed_by + lease);
  if (task.status === "completed" && task.completion_notes)
    metadata("completion notes", normalizeDescription(task.completion_notes));
  if (task.acceptance_criteria?.length) {
    lines.push("  - acceptance criteria:");
    for (const { text, done } of task.acceptance_criteria) {
      const [head, ...more] = normalizeDescription(text).split("\n");
      lines.push(`    - [${done ? "x" : " "}] ${head}`, ...escapeLines(more).map((line) => (line ? `          ${line}` : "")));
    }
  }
  for (const note of task.notes ?? [])
    if (note.at) metadata(`note${note.by ? ` by ${note.by}` : ""} at ${note.at}`, normalizeDescription(note.text));
  return lines;
}

function leavesCodeBlockOpen(lines: string[]): boolean {
  let fence: string | undefined;
  for (const line of lines) {
    const content = line.trimStart();
    if (fence && content.startsWith(fence)) fence = undefined;
    else if (!fence) fence = FENCE.exec(content)?.[1];
  }
  return fence !== undefined;
}

const TaskWithNotes = z.object({
  task: z.object({ notes: z.array(z.object({ at: z.string(), by: z.string().nullable(), text: z.string() })).default([]) }),
});

/** How many reads of single tasks an export has in flight at once. */
const READS_AT_ONCE = 8;

async function forEachAtOnce<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += READS_AT_ONCE) await Promise.all(items.slice(i, i + READS_AT_ONCE).map(work));
}

/** The tasks with their notes: a page of tasks carries only the last, `GET /tasks/{id}` every one. */
async function withNotes(tracker: Tracker, project: string, tasks: TrackedTask[]): Promise<TrackedTask[]> {
  await forEachAtOnce(
    tasks.filter((task) => task.notes_count),
    async (task) => {
      const path = `/tasks/${encodeURIComponent(task.task_id)}?${new URLSearchParams({ project })}`;
      task.notes = (await tracker.read(TaskWithNotes, path)).task.notes;
    },
  );
  return tasks;
}

/**
 * The tasks in the order they were added, from each one's `created` event (a list page orders them for
 * agents to pick: by readiness and priority): an imported file's items come back in file order, and an
 * export read back and exported again is the same text.
 */
async function inOrderAdded(tracker: Tracker, project: string, tasks: TrackedTask[]): Promise<TrackedTask[]> {
  const added = new Map<TrackedTask, number>();
  await forEachAtOnce(tasks, async (task) => {
    const { events } = await tracker.read(TaskEvents, eventsPath(project, task.task_id));
    added.set(task, events.find((event) => event.type === "created")?.event_id ?? Number.MAX_SAFE_INTEGER);
  });
  return [...tasks].sort((a, b) => added.get(a)! - added.get(b)!);
}

function readExportArguments(argv: string[], host: TransferHost) {
  const { positional, project, values } = parseCliArguments(host, "export", argv, [], ["--project", "--format"]);
  if (positional.length) throw new UsageError(`export takes no FILE (it writes to stdout): ${JSON.stringify(positional[0])}`);
  const format = values["--format"] ?? "markdown";
  if (format !== "markdown" && format !== "json")
    throw new UsageError(`--format must be markdown or json, not ${JSON.stringify(format)}`);
  return { project, format };
}

/** `export --project P [--format markdown|json]`: every task of the project on stdout. */
export function runExport(argv: string[], io: CliIo, host: TransferHost): Promise<number> {
  return runCommand(
    io,
    host,
    EXPORT_USAGE,
    () => readExportArguments(argv, host),
    async (tracker, { project, format }) => {
      const tasks = await withNotes(tracker, project, await tracker.tasks(project));
      if (format === "json") io.out(JSON.stringify({ project_id: project, tasks }, null, 2));
      else io.out(renderMarkdown(project, await inOrderAdded(tracker, project, tasks)).trimEnd());
      return 0;
    },
  );
}

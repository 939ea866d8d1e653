// An MCP server spoken to by hand: JSON-RPC lines on its stdin and stdout, each stdout line parsed
// once and matched to its request by id. The end-to-end tests use it to send what no SDK client
// would; the benchmark because it adds the least to what it measures.

import { type Lines, parseRecord } from "./lines.ts";
import { type ChildProcess, type Output, startProcess } from "./processes.ts";

export const PROTOCOL_VERSION = "2025-06-18";

export interface ToolResult {
  isError?: boolean;
  content?: { type: string; text: string }[];
  structuredContent?: any;
}

export interface JsonRpcResponse {
  jsonrpc: "2.0";
  id: number | string;
  result?: ToolResult & Record<string, any>;
  error?: { code: number; message: string };
}

export interface JsonRpcOptions {
  env: Record<string, string | undefined>;
  cwd?: string;
  /** "lines" (default) keeps every stdout line for assertions; "lines-unkept" only answers requests. */
  stdout?: "lines" | "lines-unkept";
  stderr?: Output;
  /** A request unanswered this long rejects; default: it waits as long as the server lives. */
  requestTimeoutMs?: number;
  clientName?: string;
}

interface Pending {
  resolve(message: JsonRpcResponse): void;
  reject(error: Error): void;
}

export class JsonRpcClient {
  readonly process: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number | string, Pending>();

  /** Spawns `cmd` at once. */
  constructor(
    cmd: string[],
    private readonly options: JsonRpcOptions,
  ) {
    this.process = startProcess(cmd, {
      env: options.env,
      cwd: options.cwd,
      stdin: "pipe",
      stdout: options.stdout ?? "lines",
      stderr: options.stderr ?? "lines",
    });
    this.process.stdout.onLine((line) => this.onLine(line));
    void this.process.stdout.whenEnded().then(async () => {
      const code = await this.process.exited;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`the MCP server exited (${code}) before it answered`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.process.pid;
  }

  get stdout(): Lines {
    return this.process.stdout;
  }

  get stderr(): Lines {
    return this.process.stderr;
  }

  get exited(): Promise<number> {
    return this.process.exited;
  }

  private onLine(line: string): void {
    const message = parseRecord(line) as JsonRpcResponse | null;
    if (message?.id === undefined || message.id === null) return; // a notification, or not JSON-RPC at all
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    waiter.resolve(message);
  }

  /** Writes bytes to stdin exactly as given. */
  write(bytes: string | Uint8Array): void {
    this.process.write(bytes);
  }

  /** Sends a request and resolves with the response carrying its id. */
  request(method: string, params?: unknown): Promise<JsonRpcResponse> {
    const id = this.nextId++;
    const answer = new Promise<JsonRpcResponse>((resolve, reject) => {
      const timeoutMs = this.options.requestTimeoutMs;
      if (timeoutMs === undefined) return this.pending.set(id, { resolve, reject });
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for the answer to ${method} (${id}); stderr:\n${this.stderr.text()}`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (message) => (clearTimeout(timer), resolve(message)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
    });
    this.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
    return answer;
  }

  notify(method: string, params?: unknown): void {
    this.write(`${JSON.stringify({ jsonrpc: "2.0", method, params })}\n`);
  }

  /** initialize, then notifications/initialized: how an MCP client starts a session. */
  async initialize(): Promise<void> {
    const answer = await this.request("initialize", {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: this.options.clientName ?? "task-tracking-testkit", version: "1.0.0" },
    });
    if (!answer.result) throw new Error(`initialize failed: ${JSON.stringify(answer)}`);
    this.notify("notifications/initialized");
  }

  async listTools(): Promise<{ name: string }[]> {
    const answer = await this.request("tools/list", {});
    if (answer.error) throw new Error(`tools/list failed: ${answer.error.message}`);
    return (answer.result as { tools: { name: string }[] }).tools;
  }

  /** One tools/call; throws unless the result is a success. */
  async callTool(name: string, args: Record<string, unknown>): Promise<ToolResult> {
    const answer = await this.request("tools/call", { name, arguments: args });
    if (answer.error) throw new Error(`${name}: JSON-RPC error ${answer.error.message}`);
    if (answer.result?.isError) throw new Error(`${name}: ${answer.result.content?.[0]?.text}`);
    return answer.result!;
  }

  /** Closes stdin (the server's cue to exit) and resolves with the exit code; SIGKILL after 5 s. */
  close(): Promise<number> {
    this.process.endInput();
    return this.process.stop(null, 5_000);
  }

  /** Ends it at once. */
  async kill(): Promise<void> {
    await this.process.stop("SIGKILL", 0);
  }
}

// A minimal MCP client over stdio: raw JSON-RPC lines on the child's stdin and stdout, read with
// node:child_process 'data' events (the leanest client measured here; see run.ts). The benchmark uses
// it for our server and for the MCP floor alike.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import { ROOT } from "./proc.ts";

export interface ToolResult {
  isError?: boolean;
  content?: { type: string; text: string }[];
  structuredContent?: any;
}

export interface JsonRpcResponse {
  jsonrpc: "2.0";
  id: number;
  result?: ToolResult & Record<string, unknown>;
  error?: { code: number; message: string };
}

export const PROTOCOL_VERSION = "2025-06-18";

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export class StdioMcpClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(m: JsonRpcResponse): void; reject(e: Error): void }>();
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private buffer = "";

  /** Spawns `cmd` at once; stderr goes to `stderrFile` (else nowhere). */
  constructor(cmd: string[], env: Record<string, string | undefined>, stderrFile?: string) {
    const stderr = stderrFile ? openSync(stderrFile, "a") : "ignore";
    this.child = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, env, stdio: ["pipe", "pipe", stderr] });
    live.add(this.child);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code) => {
        live.delete(this.child);
        for (const waiter of this.pending.values()) waiter.reject(new Error(`the MCP server exited (${code})`));
        this.pending.clear();
        resolve(code);
      }),
    );
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => this.onData(chunk));
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() === "") continue;
      const message = JSON.parse(line) as JsonRpcResponse;
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) continue; // a notification
      this.pending.delete(message.id);
      waiter.resolve(message);
    }
  }

  request(method: string, params: unknown): Promise<JsonRpcResponse> {
    const id = this.nextId++;
    const answer = new Promise<JsonRpcResponse>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.child.stdin!.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    return answer;
  }

  notify(method: string, params?: unknown): void {
    this.child.stdin!.write(JSON.stringify({ jsonrpc: "2.0", method, params }) + "\n");
  }

  /** initialize, then notifications/initialized. */
  async initialize(): Promise<JsonRpcResponse> {
    const answer = await this.request("initialize", {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: "bench", version: "0.0.0" },
    });
    if (answer.error) throw new Error(`initialize failed: ${answer.error.message}`);
    this.notify("notifications/initialized");
    return answer;
  }

  async listTools(): Promise<{ name: string }[]> {
    const answer = await this.request("tools/list", {});
    if (answer.error) throw new Error(`tools/list failed: ${answer.error.message}`);
    return (answer.result as unknown as { tools: { name: string }[] }).tools;
  }

  /** One tools/call; throws unless the result is a success. */
  async callTool(name: string, args: Record<string, unknown>): Promise<ToolResult> {
    const answer = await this.request("tools/call", { name, arguments: args });
    if (answer.error) throw new Error(`${name}: JSON-RPC error ${answer.error.message}`);
    if (answer.result?.isError) throw new Error(`${name}: ${answer.result.content?.[0]?.text}`);
    return answer.result!;
  }

  /** Closes stdin (the server's cue to exit 0) and waits, killing it after 3 s. */
  async close(): Promise<number | null> {
    this.child.stdin!.end();
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    const code = await this.exited;
    clearTimeout(killer);
    return code;
  }
}

// The compiled MCP server (dist/task-tracking-mcp) as Claude Code runs it: the SDK's Client over
// its stdio transport, which spawns the child itself; and the binary run to its end without a client.

import type { ChildProcess as NodeChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Lines, readInto } from "./lines.ts";
import { ensureBuilt, MCP_BINARY } from "./paths.ts";
import { runProcess } from "./processes.ts";
import { register, unregister } from "./registry.ts";

export interface McpClientProcess {
  client: Client;
  stderr: Lines;
  pid: number;
  /** Closes stdin (the MCP client's way to end the server) and resolves with the exit code. */
  close(): Promise<number | null>;
}

/** Starts the binary under an SDK Client and completes the MCP handshake. */
export async function startMcpClient(options: {
  env: Record<string, string>;
  command?: string;
  cwd?: string;
  clientName?: string;
}): Promise<McpClientProcess> {
  const command = options.command ?? MCP_BINARY;
  if (command === MCP_BINARY) ensureBuilt(command);
  const transport = new StdioClientTransport({
    command,
    args: [],
    env: options.env,
    stderr: "pipe",
    cwd: options.cwd ?? tmpdir(),
  });
  const stderr = new Lines();
  readInto(transport.stderr as NodeJS.ReadableStream, stderr);
  const client = new Client({ name: options.clientName ?? "task-tracking-testkit", version: "1.0.0" });
  try {
    await client.connect(transport);
  } catch (error) {
    await transport.close();
    throw error;
  }
  // The transport keeps its child process to itself; its exit code is what we need to check.
  const child = (transport as unknown as { _process?: NodeChildProcess })._process!;
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  let closing: Promise<number | null> | undefined;
  const close = () => {
    closing ??= (async () => {
      await client.close();
      const code = await exited;
      await stderr.whenEnded();
      unregister(handle);
      return code;
    })();
    return closing;
  };
  const handle = register({ stop: close, killNow: () => void child.kill("SIGKILL") });
  return { client, stderr, pid: child.pid!, close };
}

/** Runs the binary directly (no MCP client), e.g. to see it fail at start-up. */
export function runMcpBinary(args: string[], env: Record<string, string>, stdin?: string) {
  ensureBuilt(MCP_BINARY);
  return runProcess([MCP_BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
    cwd: tmpdir(),
    stdin: stdin === undefined ? "ignore" : { text: stdin },
  });
}

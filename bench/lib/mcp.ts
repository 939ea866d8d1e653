// The benchmark's MCP client: the test kit's raw JSON-RPC client (testkit/json-rpc.ts), which reads
// the child's stdout with node:child_process 'data' events and parses each line once (the leanest
// client measured here; see run.ts). It serves our server and the MCP floor alike.
import { JsonRpcClient } from "../../testkit/json-rpc.ts";
import { ROOT } from "./proc.ts";

export { type JsonRpcResponse, PROTOCOL_VERSION, type ToolResult } from "../../testkit/json-rpc.ts";

export class StdioMcpClient extends JsonRpcClient {
  /** Spawns `cmd` at once; stderr goes to `stderrFile` (else nowhere); stdout lines are not kept. */
  constructor(cmd: string[], env: Record<string, string | undefined>, stderrFile?: string) {
    super(cmd, {
      env,
      cwd: ROOT,
      stdout: "lines-unkept",
      stderr: stderrFile ? { file: stderrFile } : "ignore",
      clientName: "bench",
    });
  }
}

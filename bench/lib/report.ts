// Plain-text tables and the list of targets.
import { cpus, loadavg, release, totalmem } from "node:os";

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? "").length)));
  const numeric = headers.map((_, c) =>
    rows.every((row) => /^[-+~≈]?[\d.,]+(\s?[%×x]|\s?ms|\s?MB)?$|^—$|^n\/a$/.test(String(row[c] ?? ""))),
  );
  const line = (row: string[]) =>
    row
      .map((cell, c) => (numeric[c] && c > 0 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** Milliseconds with three significant places, e.g. 0.0712, 0.412, 12.3. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return "—";
  if (value < 0.1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return value.toFixed(0);
}

export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "—";
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)}×` : "—";
}

export function pct(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)}%` : "—";
}

export function noise(spread: number): string {
  return Number.isFinite(spread) ? `±${(spread / 2).toFixed(0)}%` : "—";
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  ok: boolean;
}

export function machine() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    bun: Bun.version,
    loadavg_start: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

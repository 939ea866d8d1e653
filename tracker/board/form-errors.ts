// The tracker's sentences in the add form's words: `tasks[0].task_id must be 1 to 64 characters …`
// becomes `Task ID must be 1 to 64 characters …`, named by the field's label as the person reads it.

import { ApiFailure } from "./api.ts";

/** The first field a tracker sentence names (`tasks[0].depends_on[2] …`): the field and the rest. */
const FIELD_SENTENCE = /^tasks\[0\]\.([a-z_]+)(?:\[(\d+)\])? (.*)$/s;

/** A validation_failed sentence about a field the form has (input ID by API field), in its label's words. */
export function inFormWords(
  error: unknown,
  inputs: Readonly<Record<string, string>>,
): { sentence: string; input: string } | null {
  if (!(error instanceof ApiFailure) || error.code !== "validation_failed") return null;
  const match = FIELD_SENTENCE.exec(error.message);
  const input = match ? inputs[match[1]!] : undefined;
  if (!match || input === undefined) return null;
  const label = labelOf(input);
  const entry = match[2] === undefined ? "" : ` (entry ${Number(match[2]) + 1})`;
  return { sentence: `${label}${entry} ${match[3]!}`, input };
}

/** The label's text without its parenthesised help: `Depends on (task IDs, …)` reads `Depends on`. */
function labelOf(inputId: string): string {
  const label = document.querySelector(`label[for="${inputId}"]`);
  return (label?.textContent ?? inputId).replace(/\s*\(.*$/s, "").trim();
}

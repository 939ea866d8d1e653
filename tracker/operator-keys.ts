// The names of the operator's own keys (TRACKER_API_KEYS, the key file: keys.ts, operatorKeyName), which
// no kept key may take. Without imports, so the board's bundle shares the rule with the service.

export function isOperatorKeyName(name: string): boolean {
  return /^operator(-\d+)?$/i.test(name);
}

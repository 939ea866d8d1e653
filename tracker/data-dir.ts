// Where one user's tracker keeps its data when nothing says otherwise. Shared by the tracker (its
// database and key file, config.ts) and the MCP server beside it (index.ts: the key file it reads when
// no key is configured), so both name the same file on every platform. Imports nothing of the tracker:
// the MCP server's binary takes this file and no more.

import { posix, win32 } from "node:path";

type Env = Record<string, string | undefined>;

/** The name of the key file a tracker without TRACKER_API_KEYS keeps beside its database. */
export const LOCAL_API_KEY_FILE_NAME = "api-key";

/** Unset and empty mean the same: the default. */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/**
 * One tracker per user: by default its database and key file live in the user's data directory,
 * the same whatever directory the tracker is started from. Linux and other Unix: $XDG_DATA_HOME
 * (when absolute, as the XDG spec asks) or ~/.local/share; macOS: ~/Library/Application Support;
 * Windows: %LOCALAPPDATA%. Undefined when the variables it comes from are not set.
 */
export function userDataDir(env: Env = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === "win32") {
    const localAppData = read(env, "LOCALAPPDATA");
    return localAppData === undefined ? undefined : win32.join(localAppData, "task-tracking");
  }
  const home = read(env, "HOME");
  if (platform === "darwin")
    return home === undefined ? undefined : posix.join(home, "Library", "Application Support", "task-tracking");
  const xdgDataHome = read(env, "XDG_DATA_HOME");
  if (xdgDataHome !== undefined && posix.isAbsolute(xdgDataHome)) return posix.join(xdgDataHome, "task-tracking");
  return home === undefined ? undefined : posix.join(home, ".local", "share", "task-tracking");
}

/**
 * The key file of a tracker started with its defaults (`task-tracker paths` prints it): what the MCP
 * server reads when neither TASK_TRACKING_API_KEY nor TASK_TRACKING_API_KEY_FILE is set.
 */
export function localTrackerKeyFile(env: Env = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  const dataDir = userDataDir(env, platform);
  return dataDir === undefined ? undefined : (platform === "win32" ? win32 : posix).join(dataDir, LOCAL_API_KEY_FILE_NAME);
}

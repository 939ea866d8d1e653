// The routes of the keys the tracker keeps (API.md, "Keys and roles"): the admin's add, list and
// revoke, which `task-tracker keys` calls while the tracker runs (cli/keys.ts), and any key's whoami.

import { checkKeyName, checkKeyProjects, generateApiKey, hashApiKey } from "../keys.ts";
import { json } from "./pipeline.ts";
import type { keyPath, newKeyBody } from "./schemas.ts";
import type { Handler } from "./types.ts";

/** POST /admin/keys: a new key, shown in this answer only. */
export const addKey: Handler<undefined, undefined, typeof newKeyBody> = async ({ body, services }) => {
  checkKeyName(body.name);
  checkKeyProjects(body.role, body.projects);
  const key = generateApiKey();
  const record = await services.storage.addApiKey({
    name: body.name,
    role: body.role,
    projects: [...new Set(body.projects)],
    hash: hashApiKey(key),
    createdAt: services.now(),
  });
  services.keys.forget();
  services.logger.log("info", "key added", { key: record.name, role: record.role });
  return json(201, { ...record, key });
};

/** GET /admin/keys: every key, revoked ones too; never a key itself. */
export const listKeys: Handler = async ({ services }) => {
  return json(200, { keys: await services.storage.listApiKeys() });
};

/** DELETE /admin/keys/{name}: revokes the key; every instance refuses it within a second. */
export const revokeKey: Handler<typeof keyPath> = async ({ params, services }) => {
  const record = await services.storage.revokeApiKey(params.name, services.now());
  services.keys.forget();
  services.logger.log("info", "key revoked", { key: record.name });
  return json(200, { key: record });
};

/** GET /whoami: the caller's key as the tracker knows it (name, role, projects), never the key. */
export const whoami: Handler = async ({ holder }) => {
  return json(200, { name: holder.name, role: holder.role, projects: holder.projects });
};

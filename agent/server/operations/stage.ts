import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import {
  StagedFileMismatchError,
  StagedFileMissingError,
  InvalidRequestError,
} from "../../protocol/errors.ts";
import { oneLine } from "../../../base/text.ts";
import { fieldsOf, intField, stringField } from "../request-fields.ts";
import { resolveInStaging } from "../staging-path.ts";
import type { OperationContext, OperationHandler } from "./context.ts";

/**
 * Stage: verifies a file the push channel (SFTP, SMB) already put into the staging directory, by
 * size and SHA-256. Bulk bytes never travel inside SOAP; this is how the agent learns the push
 * arrived whole and unaltered.
 */
export function stageOperation(context: OperationContext): OperationHandler {
  const { settings, log } = context;
  return async (args, _facts, signal) => {
    const fields = fieldsOf(args, "Stage");
    const name = stringField(fields, "name", 1024);
    const size = intField(fields, "size", { min: 0, max: Number.MAX_SAFE_INTEGER });
    const sha256 = stringField(fields, "sha256", 64).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new InvalidRequestError("sha256 must be 64 hex digits");

    const path = await resolveInStaging(settings.stagingDir, name);
    const info = await stat(path);
    if (!info.isFile()) throw new StagedFileMissingError(`${JSON.stringify(name)} is not a regular file`);
    if (info.size !== size)
      throw new StagedFileMismatchError(`${JSON.stringify(name)} has ${info.size} bytes, expected ${size}`);
    const actual = await sha256Of(path, signal);
    if (actual !== sha256)
      throw new StagedFileMismatchError(`${JSON.stringify(name)} has SHA-256 ${actual}, expected ${sha256}`);
    log.write("info", `stage ${oneLine(name)}: verified ${size} bytes, sha256 ${sha256}`);
    return { name, size, sha256 };
  };
}

async function sha256Of(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

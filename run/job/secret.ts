/**
 * Reading a secret a job refers to, at the moment it is needed (a target connecting), so the job
 * itself never holds one and it is read no earlier and no more widely than needed.
 */
import { errorClass } from "../../base/errors.ts";
import { MAX_SECRET_BYTES, readCheckedFile } from "../../base/files.ts";
import type { SecretRef } from "./types.ts";

/** A secret that cannot be read; the message names the reference, never a value. */
export class SecretUnavailableError extends errorClass("SECRET_UNAVAILABLE") {}

/**
 * The secret's value: the environment variable's, or the file's content less one final newline.
 *
 * @throws {SecretUnavailableError} when the variable is unset or empty, or the file is missing,
 *   not a regular file, or larger than {@link MAX_SECRET_BYTES}.
 */
export async function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (ref.kind === "env") {
    const value = env[ref.name];
    if (value === undefined || value === "")
      throw new SecretUnavailableError(`environment variable ${ref.name} is not set`);
    return value;
  }
  const path = ref.path;
  const text = await readCheckedFile(path, {
    maxBytes: MAX_SECRET_BYTES,
    refuse: (refused) => {
      switch (refused.reason) {
        case "unreadable":
          return new SecretUnavailableError(`secret file ${path} cannot be read (${refused.code})`, {
            cause: refused.cause,
          });
        case "not-file":
          return new SecretUnavailableError(`secret file ${path} is not a regular file`);
        case "too-large":
          return new SecretUnavailableError(`secret file ${path} is larger than ${refused.maxBytes} bytes`);
      }
    },
  });
  return text.toString("utf8").replace(/\r?\n$/, "");
}

/**
 * Reading a secret a job refers to, at the moment it is needed (a target connecting), so the job
 * itself never holds one and it is read no earlier and no more widely than needed.
 */
import { errorClass } from "../../base/errors.ts";
import { readFile, stat } from "node:fs/promises";
import type { SecretRef } from "./types.ts";

/** Largest secret file read: keys and passwords are small. */
export const MAX_SECRET_BYTES = 64 * 1024;

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
  try {
    const info = await stat(ref.path);
    if (!info.isFile()) throw new SecretUnavailableError(`secret file ${ref.path} is not a regular file`);
    if (info.size > MAX_SECRET_BYTES)
      throw new SecretUnavailableError(`secret file ${ref.path} is larger than ${MAX_SECRET_BYTES} bytes`);
    return (await readFile(ref.path, "utf8")).replace(/\r?\n$/, "");
  } catch (cause) {
    if (cause instanceof SecretUnavailableError) throw cause;
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new SecretUnavailableError(`secret file ${ref.path} cannot be read (${code})`, { cause });
  }
}

/**
 * Resolving a component file name inside the staging directory. Names come from the workstation,
 * but the agent still refuses any that could reach outside the directory: a `..` segment, an
 * absolute path, or a symlink (at any level) whose target lies outside.
 */
import { realpath } from "node:fs/promises";
import { isAbsolute, join, relative, sep, win32 } from "node:path";
import { PathEscapesStagingError, StagedFileMissingError } from "../protocol/errors.ts";

const MAX_NAME_CHARS = 1024;

/**
 * The real path of `name` inside `stagingDir`.
 *
 * @throws PathEscapesStagingError when the name, or the file it resolves to, is outside.
 * @throws StagedFileMissingError when nothing is there.
 */
export async function resolveInStaging(stagingDir: string, name: string): Promise<string> {
  checkName(name);
  const root = await realpath(stagingDir);
  let real: string;
  try {
    real = await realpath(join(root, name));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT")
      throw new StagedFileMissingError(`${JSON.stringify(name)} is not in the staging directory`, { cause });
    throw cause;
  }
  const rel = relative(root, real);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel))
    throw new PathEscapesStagingError(`${JSON.stringify(name)} resolves outside the staging directory`);
  return real;
}

/** The checks that need no file system: refuse before touching anything. */
function checkName(name: string): void {
  if (name.length === 0 || name.length > MAX_NAME_CHARS || name.includes("\0"))
    throw new PathEscapesStagingError(`file name must be 1 to ${MAX_NAME_CHARS} characters without NUL`);
  if (isAbsolute(name) || win32.isAbsolute(name))
    throw new PathEscapesStagingError(`${JSON.stringify(name)} is an absolute path`);
  if (name.split(/[\\/]/).includes(".."))
    throw new PathEscapesStagingError(`${JSON.stringify(name)} has a ".." segment`);
}

/**
 * Reading a small file that someone else wrote into the agent's directory (the workstation's
 * config and certificate, another run's out file) without following a link there: what the agent
 * reads must be the regular file at that name, not what a link placed by someone else points to.
 */
import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";

/** `O_NOFOLLOW` where the platform has it (not on Windows, where the lstat check stands alone). */
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * The bytes of the regular file at `path`, at most `maxBytes` of them. Rejects with the file
 * system's error (ENOENT when there is no such file, ELOOP for a link where O_NOFOLLOW exists), or
 * an Error when it is not a regular file, changed between its check and its opening, or is larger.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<Buffer> {
  const seen = await lstat(path);
  if (!seen.isFile()) throw new Error(`${path} is not a regular file`);
  const handle = await open(path, constants.O_RDONLY | NO_FOLLOW);
  try {
    const opened = await handle.stat();
    // Another file put in its place between the lstat and the open (a link, on Windows).
    if (!opened.isFile() || opened.ino !== seen.ino || opened.dev !== seen.dev)
      throw new Error(`${path} changed while it was opened`);
    if (opened.size > maxBytes) throw new Error(`${path} is over ${maxBytes} bytes`);
    // Read to the end, one byte past the cap at most: the file may grow after the stat.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new Error(`${path} is over ${maxBytes} bytes`);
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

/**
 * Reading a small file that sumac must not be fooled by: opened once, checked on that handle (no
 * window for a swap between the check and the read), and read no further than a cap, so a device,
 * a FIFO or a huge file in its place is refused rather than read.
 */
import { constants, type Stats } from "node:fs";
import { open } from "node:fs/promises";

/** Largest secret file read (keys, passwords, tokens, NATS credentials are all far smaller). */
export const MAX_SECRET_BYTES = 64 * 1024;

/** Why a file was refused: each caller words it in its own error. */
export type FileRefusal =
  | { readonly reason: "unreadable"; readonly code: string; readonly cause: unknown }
  | { readonly reason: "not-file" }
  | { readonly reason: "too-large"; readonly maxBytes: number };

export interface CheckedReadOptions {
  readonly maxBytes: number;
  /** Further checks on the open file (owner, mode); throws to refuse it. */
  readonly check?: (st: Stats) => void;
  /** The error a refusal becomes. */
  readonly refuse: (refusal: FileRefusal) => Error;
}

/** The whole file, at most `maxBytes`, once it is a regular file that passes `check`. */
export async function readCheckedFile(path: string, options: CheckedReadOptions): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
    throw options.refuse({ reason: "unreadable", code, cause });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw options.refuse({ reason: "not-file" });
    options.check?.(st);
    const buf = Buffer.alloc(options.maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) return buf.subarray(0, length);
      length += bytesRead;
      if (length > options.maxBytes)
        throw options.refuse({ reason: "too-large", maxBytes: options.maxBytes });
    }
  } finally {
    await handle.close();
  }
}

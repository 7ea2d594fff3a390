/**
 * The start-up dialogue over files in the bundle's directory (Windows: agent/protocol/files-dialogue.ts
 * has the protocol), and the stop file the workstation writes to stop the agent.
 *
 * The agent creates its out file exclusively (`O_CREAT | O_EXCL` follows no link: a file or link
 * already at that name fails the start) and appends each line with one write. It reads the
 * workstation's files only as regular files at their names (small-file.ts) and deletes each once
 * read, so that nothing of the dialogue is read twice.
 */
import { openSync, writeSync } from "node:fs";
import { lstat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { withDeadline } from "../../base/deadline.ts";
import { DeadlineExceededError } from "../protocol/errors.ts";
import {
  CERT_FILE_DEADLINE_MS,
  CERT_FILE_POLL_MS,
  DIALOGUE_FILES,
  eventLine,
  MAX_CERT_FILE_BYTES,
  MAX_CONFIG_FILE_BYTES,
  STOP_FILE_POLL_MS,
} from "../protocol/files-dialogue.ts";
import type { DialogueChannel } from "./dialogue.ts";
import { readSmallFile } from "./small-file.ts";

export interface FilesDialogueOptions {
  /** The bundle's directory, where the dialogue's files are. */
  readonly dir: string;
  /** Default {@link CERT_FILE_DEADLINE_MS} and {@link CERT_FILE_POLL_MS}. */
  readonly certDeadlineMs?: number;
  readonly certPollMs?: number;
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === "ENOENT";

/**
 * The dialogue over the files of `options.dir`. Creates the out file at once, so that every later
 * failure (a config that cannot be read included) can be said there; throws when it cannot.
 */
export function createFilesDialogue(options: FilesDialogueOptions): DialogueChannel {
  const { dir } = options;
  const out = openSync(join(dir, DIALOGUE_FILES.out), "ax", 0o640);

  /** Reads `name` once and deletes it; a file that could not be read is deleted too when it can be. */
  async function take(name: string, maxBytes: number): Promise<unknown> {
    const path = join(dir, name);
    let bytes: Buffer;
    try {
      bytes = await readSmallFile(path, maxBytes);
    } catch (cause) {
      if (!isMissing(cause)) await unlink(path).catch(() => undefined);
      throw new Error(`cannot read ${name}: ${(cause as Error).message}`, { cause });
    }
    try {
      await unlink(path);
    } catch (cause) {
      throw new Error(`cannot delete ${name} after reading it: ${(cause as Error).message}`, { cause });
    }
    try {
      // A byte order mark, as Windows editors write one, is not part of the JSON.
      return JSON.parse(bytes.toString("utf8").replace(/^\uFEFF/, "")) as unknown;
    } catch (cause) {
      throw new Error(`${name} is not one JSON document`, { cause });
    }
  }

  return {
    readConfig: () => take(DIALOGUE_FILES.config, MAX_CONFIG_FILE_BYTES),

    readCertificate() {
      const ms = options.certDeadlineMs ?? CERT_FILE_DEADLINE_MS;
      const pollMs = options.certPollMs ?? CERT_FILE_POLL_MS;
      const timeout = new DeadlineExceededError(`${DIALOGUE_FILES.cert} did not appear within ${ms} ms`);
      return withDeadline({ ms, timeout }, async (signal) => {
        // The workstation renames the file into place once written: present means whole.
        for (;;) {
          try {
            await lstat(join(dir, DIALOGUE_FILES.cert));
            return await take(DIALOGUE_FILES.cert, MAX_CERT_FILE_BYTES);
          } catch (error) {
            if (!isMissing(error)) throw error;
          }
          await sleep(pollMs, undefined, { signal });
        }
      });
    },

    send(event) {
      try {
        // One write of the whole line to a file opened for appending: a reader never sees half.
        writeSync(out, eventLine(event));
      } catch {
        // The out file is the only place the agent could say so.
      }
    },
  };
}

/**
 * Looks for the stop file in `dir` every `intervalMs`; when it is there, deletes it, stops
 * looking and calls `onStop`. Its timer never keeps the process alive. Returns what stops looking.
 */
export function watchStopFile(dir: string, onStop: () => void, intervalMs = STOP_FILE_POLL_MS): () => void {
  const path = join(dir, DIALOGUE_FILES.stop);
  let looking = false;
  let done = false;
  const timer = setInterval(() => {
    if (looking || done) return;
    looking = true;
    lstat(path).then(
      async () => {
        done = true;
        clearInterval(timer);
        // Deleted first, so the workstation sees its stop taken; one that cannot be deleted (a
        // directory) still stops the agent.
        await unlink(path).catch(() => undefined);
        onStop();
      },
      () => {
        looking = false;
      },
    );
  }, intervalMs);
  timer.unref();
  return () => {
    done = true;
    clearInterval(timer);
  };
}

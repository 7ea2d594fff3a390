import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fieldsOf, intField } from "../request-fields.ts";
import type { OperationContext, OperationHandler } from "./context.ts";

const MAX_FILES = 100;

/**
 * Logs: the regular files of this run's log directory with their contents, base64. Each file is
 * cut to its last `maxBytesPerFile` bytes (the end of a log says how it ended), all files together
 * to `maxLogBytesTotal`; `truncated` says when something was cut.
 */
export function logsOperation(context: OperationContext): OperationHandler {
  const { settings, log } = context;
  const { limits } = settings;
  return async (args) => {
    const perFile = intField(fieldsOf(args, "Logs"), "maxBytesPerFile", {
      min: 0,
      max: limits.maxLogBytesPerFile,
      fallback: limits.maxLogBytesPerFile,
    });
    const entries = await readdir(log.dir, { withFileTypes: true });
    const names = entries
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort()
      .slice(0, MAX_FILES);
    let budget = limits.maxLogBytesTotal;
    const files = [];
    for (const name of names) {
      const { size, content } = await readTail(join(log.dir, name), Math.min(perFile, budget));
      budget -= content.byteLength;
      files.push({ name, size, truncated: content.byteLength < size, content: content.toString("base64") });
    }
    return { file: files };
  };
}

/** The file's size and its last `max` bytes, read without loading the rest. */
async function readTail(path: string, max: number): Promise<{ size: number; content: Buffer }> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, max);
    const content = Buffer.alloc(length);
    await handle.read(content, 0, length, size - length);
    return { size, content };
  } finally {
    await handle.close();
  }
}

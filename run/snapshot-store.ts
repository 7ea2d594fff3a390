/**
 * Persisting target machines' snapshots in the Bus KV, so a run can be followed and a target
 * restored: bucket `sumac-targets`, key `<run>.<target>` (ids as subject tokens), value the
 * machine's persisted snapshot as JSON.
 *
 * One writer per target. A snapshot is written after every transition; while a write is in flight
 * only the latest snapshot waits for the next one (an older state that a newer one supersedes is
 * not worth a write), so a slow store never queues more than one write per target.
 */
import { encodeJson, type KvStore } from "../bus/bus.ts";
import { subjectToken } from "../bus/subjects.ts";

/** The KV bucket of target snapshots. */
export const SNAPSHOT_BUCKET = "sumac-targets";

/** The key of a target's snapshot in {@link SNAPSHOT_BUCKET}. */
export function snapshotKey(runId: string, targetId: string): string {
  return `${subjectToken(runId)}.${subjectToken(targetId)}`;
}

/**
 * Runs whose snapshots the embedded state directory keeps. The in-process KV holds every key in
 * memory and reads its whole file at start, so without a limit each run (a key per target) would
 * make every later start slower and bigger; a 10,000-target run alone adds 10,000 keys.
 */
export const EMBEDDED_SNAPSHOT_RUNS = 20;

/**
 * Deletes the snapshots of every run but the newest `keep` (run ids, and so their tokens, sort by
 * start time). Resolves to how many runs' snapshots went.
 */
export async function pruneSnapshots(kv: KvStore, keep: number): Promise<number> {
  const runOf = (key: string): string => key.slice(0, key.indexOf("."));
  const keys = await kv.keys();
  const runs = [...new Set(keys.map(runOf))].sort();
  const old = new Set(runs.slice(0, Math.max(0, runs.length - keep)));
  const doomed = keys.filter((key) => old.has(runOf(key)));
  // One batch: the in-process KV logs (and syncs) the deletes together; NATS pipelines them.
  if (doomed.length > 0) await kv.writeMany(doomed.map((key) => [key, undefined] as const));
  return old.size;
}

/** Writes one target's snapshots, latest wins; errors go to `onError` (the run goes on). */
export class SnapshotWriter {
  readonly #kv: KvStore;
  readonly #key: string;
  readonly #onError: (error: unknown) => void;
  #pending: (() => unknown) | null = null;
  #writing: Promise<void> | null = null;
  /** Writes that reached the store. */
  written = 0;

  constructor(kv: KvStore, key: string, onError: (error: unknown) => void) {
    this.#kv = kv;
    this.#key = key;
    this.#onError = onError;
  }

  /**
   * A transition happened: `take` gives the snapshot to write. It is called when the write
   * starts, so a snapshot superseded while the store was busy is never serialised.
   */
  save(take: () => unknown): void {
    this.#pending = take;
    if (this.#writing === null) this.#writing = this.#drain();
  }

  async #drain(): Promise<void> {
    // Settles only after `save` has kept this promise, even when the first write fails at once.
    await Promise.resolve();
    try {
      while (this.#pending !== null) {
        const take = this.#pending;
        this.#pending = null;
        try {
          await this.#kv.put(this.#key, encodeJson(take()));
          this.written++;
        } catch (error) {
          this.#onError(error);
        }
      }
    } finally {
      this.#writing = null;
    }
  }

  /** Resolves once the latest snapshot given is written (or its write failed). */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }
}

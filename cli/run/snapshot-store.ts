/**
 * Persisting target machines' snapshots in the Bus KV, so a run can be followed and a target
 * restored: bucket `sumac-targets`, key `<run>.<target>` (ids as subject tokens), value the
 * machine's persisted snapshot as JSON.
 *
 * One writer per target. A snapshot is written after every transition; while a write is in flight
 * only the latest snapshot waits for the next one (an older state that a newer one supersedes is
 * not worth a write), so a slow store never queues more than one write per target.
 */
import { encodeJson, type KvStore } from "../../bus/bus.ts";
import { subjectToken } from "../../bus/subjects.ts";

/** The KV bucket of target snapshots. */
export const SNAPSHOT_BUCKET = "sumac-targets";

/** The key of a target's snapshot in {@link SNAPSHOT_BUCKET}. */
export function snapshotKey(runId: string, targetId: string): string {
  return `${subjectToken(runId)}.${subjectToken(targetId)}`;
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

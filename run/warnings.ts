/**
 * Problems of a run that change no outcome (a bus write that failed, a display that threw), kept
 * once per kind with a count and the first error's message, so ten thousand targets failing the
 * same way give one line in the report, not ten thousand.
 */
export class Warnings {
  readonly #byKind = new Map<string, { count: number; first: string }>();

  add(what: string, error: unknown): void {
    const seen = this.#byKind.get(what);
    if (seen) {
      seen.count++;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.#byKind.set(what, { count: 1, first: message.slice(0, 500) });
  }

  get size(): number {
    return this.#byKind.size;
  }

  /** One line per kind: `what: first message (N times)`. */
  list(): string[] {
    return [...this.#byKind].map(
      ([what, { count, first }]) => `${what}: ${first}${count > 1 ? ` (${count} times)` : ""}`,
    );
  }
}

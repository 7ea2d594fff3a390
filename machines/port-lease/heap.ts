/**
 * A binary min-heap of numbers with an optional payload, the one data structure behind the lease
 * table's O(log n) lookups: the lowest freed port, the next lease to expire, the next cool-down to
 * end. Plain arrays, no allocation per operation beyond growth.
 */
export class MinHeap<T> {
  private readonly keys: number[] = [];
  private readonly values: T[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** The smallest key, or undefined when empty. */
  peekKey(): number | undefined {
    return this.keys[0];
  }

  /** The payload of the smallest key, or undefined when empty. */
  peekValue(): T | undefined {
    return this.values[0];
  }

  push(key: number, value: T): void {
    const keys = this.keys;
    const values = this.values;
    let i = keys.length;
    keys.push(key);
    values.push(value);
    // Sift up: move the parent down until the new key's place is found.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = keys[parent]!;
      if (pk <= key) break;
      keys[i] = pk;
      values[i] = values[parent]!;
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  /** Removes the smallest entry; a no-op when empty. */
  pop(): void {
    const keys = this.keys;
    const values = this.values;
    const lastKey = keys.pop();
    const lastValue = values.pop();
    const n = keys.length;
    if (n === 0 || lastKey === undefined) return;
    // Sift the former last entry down from the root.
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && keys[right]! < keys[left]! ? right : left;
      if (keys[child]! >= lastKey) break;
      keys[i] = keys[child]!;
      values[i] = values[child]!;
      i = child;
    }
    keys[i] = lastKey;
    values[i] = lastValue!;
  }

  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
  }
}

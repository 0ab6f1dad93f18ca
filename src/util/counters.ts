/** A named counter map, used for rejection counts by error code and other tallies. */
export class Counters {
  private readonly counts = new Map<string, number>()

  inc (key: string, by = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + by)
  }

  get (key: string): number {
    return this.counts.get(key) ?? 0
  }

  toJSON (): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)))
  }
}

import type { SignedRecord } from '../records/types.js'
import type { EquivocationEvidence, PutStatus, RecordPage, RecordQuery, RecordStore, StoreCounts } from '../store/types.js'

/** In-memory RecordStore (unit tests, the in-process simulation) with the same put/heads/bySeq semantics as the LevelDB one. */
export function createMemoryStore (): RecordStore & { size: () => number } {
  const byId = new Map<string, SignedRecord>()
  const logs = new Map<string, Map<number, string>>()
  const evidence = new Map<string, Set<string>>()
  const meta = new Map<string, unknown>()
  let own = 0
  const store: RecordStore & { size: () => number } = {
    async start () {},
    async stop () {},
    async put (r, opts): Promise<PutStatus> {
      if (byId.has(r.id)) return 'duplicate'
      let log = logs.get(r.body.author)
      if (log == null) logs.set(r.body.author, log = new Map())
      const existing = log.get(r.body.seq)
      if (existing != null) {
        const k = `${r.body.author}!${r.body.seq}`
        const ev = evidence.get(k) ?? new Set([existing])
        ev.add(r.id)
        evidence.set(k, ev)
        byId.set(r.id, r)
        return 'equivocation'
      }
      log.set(r.body.seq, r.id)
      byId.set(r.id, r)
      if (opts?.own === true) own++
      return 'inserted'
    },
    async putMany (records, opts) {
      const out: PutStatus[] = []
      for (const r of records) out.push(await store.put(r, opts))
      return out
    },
    async get (id) { return byId.get(id) },
    async has (id) { return byId.has(id) },
    async heads () {
      const out = new Map<string, number>()
      for (const [a, log] of logs) {
        let h = 0
        while (log.has(h + 1)) h++
        out.set(a, h)
      }
      return out
    },
    async bySeq (author, afterSeq, limit) {
      const log = logs.get(author)
      if (log == null || limit <= 0) return []
      return [...log.keys()].filter(s => s > afterSeq).sort((a, b) => a - b).slice(0, limit).map(s => byId.get(log.get(s)!)!)
    },
    async nextSeq (author) {
      const log = logs.get(author)
      return log == null ? 1 : Math.max(0, ...log.keys()) + 1
    },
    async query (q: RecordQuery): Promise<RecordPage> {
      const all = [...byId.values()].filter(r => q.author == null || r.body.author === q.author)
      return { records: all.slice(0, q.limit ?? 100) }
    },
    async * all () { yield * byId.values() },
    async counts (): Promise<StoreCounts> {
      return { records: byId.size, own, authors: logs.size, equivocations: evidence.size }
    },
    async evidence (): Promise<EquivocationEvidence[]> {
      return [...evidence.entries()].map(([k, ids]) => {
        const [author, seq] = k.split('!')
        return { author, seq: Number(seq), ids: [...ids] }
      })
    },
    async getMeta<T> (key: string) { return meta.get(key) as T | undefined },
    async putMeta (key: string, value: unknown) { meta.set(key, value) },
    size: () => byId.size
  }
  return store
}

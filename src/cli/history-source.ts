import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SwarmtuneError } from '../util/errors.js'
import { toBodies, type HistoryBody } from '../meta/dataset.js'

/**
 * Where `eval` and the benchmark scripts read a history from (I/O lives here, not in the pure
 * modules): a JSONL file of record bodies or `history --json` entries, a data dir's LevelDB
 * store (the daemon must not be running: LevelDB allows one opener), or a daemon's API.
 */
export function parseHistoryJsonl (text: string, source = 'history'): HistoryBody[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  // `history --json` prints one JSON array; JSONL has one value per line
  if (trimmed.startsWith('[')) {
    try {
      return toBodies(JSON.parse(trimmed))
    } catch (err) {
      throw new SwarmtuneError('E_BAD_HISTORY', `${source}: not a JSON array of records: ${(err as Error).message}`)
    }
  }
  const out: HistoryBody[] = []
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    let v: unknown
    try {
      v = JSON.parse(line)
    } catch (err) {
      throw new SwarmtuneError('E_BAD_HISTORY', `${source}:${i + 1}: not JSON: ${(err as Error).message}`)
    }
    try {
      out.push(...toBodies([v as HistoryBody]))
    } catch {
      throw new SwarmtuneError('E_BAD_HISTORY', `${source}:${i + 1}: not a record body`)
    }
  })
  return out
}

export async function readHistoryFile (file: string): Promise<HistoryBody[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new SwarmtuneError('E_BAD_HISTORY', `cannot read ${file}: ${(err as Error).message}`)
  }
  return parseHistoryJsonl(text, file)
}

export async function readHistoryDataDir (dataDir: string): Promise<HistoryBody[]> {
  const { createRecordStore } = await import('../store/record-store.js')
  const store = createRecordStore({ path: join(dataDir, 'store'), maxRecords: Number.MAX_SAFE_INTEGER, dataDir })
  await store.start()
  try {
    const out: HistoryBody[] = []
    for await (const r of store.all()) out.push(r.body)
    return out
  } finally {
    await store.stop()
  }
}

export async function readHistoryApi (base: string): Promise<HistoryBody[]> {
  const { apiGet } = await import('../node/api-client.js')
  const out: HistoryBody[] = []
  const params = new URLSearchParams({ limit: '5000' })
  for (;;) {
    const page = await apiGet<{ records: Array<{ body: HistoryBody }>, cursor?: string }>(base, `/records?${params.toString()}`)
    out.push(...page.records.map(r => r.body))
    if (page.cursor == null) break
    params.set('cursor', page.cursor)
  }
  return out
}

import { intFlag, parseFlags, printJson } from '../args.js'
import { apiGet, apiUrl } from '../../node/api-client.js'
import type { RecordView } from '../../node/routes.js'

const HELP = `usage: swarmtune history [--api URL] [--json] [--limit N] [--author PEER] [--model MODEL_ID] [--source S]
Lists stored performance records, newest first (--json: a JSON array of {id, author, seq, source, timestamp, body}).
`

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    api: { type: 'string' },
    json: { type: 'boolean' },
    limit: { type: 'string' },
    author: { type: 'string' },
    model: { type: 'string' },
    source: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  const limit = intFlag(f.limit, 'limit', 20)
  const base = apiUrl(f.api)
  const params = new URLSearchParams({ order: 'desc' })
  if (f.author != null) params.set('author', f.author)
  if (f.model != null) params.set('model', f.model)
  if (f.source != null) params.set('source', f.source)
  const records: RecordView[] = []
  // page through until `limit` records (the API caps one page)
  while (records.length < limit) {
    params.set('limit', String(Math.min(1000, limit - records.length)))
    const page = await apiGet<{ records: RecordView[], cursor?: string }>(base, `/records?${params.toString()}`)
    records.push(...page.records)
    if (page.cursor == null) break
    params.set('cursor', page.cursor)
  }
  if (f.json === true) { printJson(records); return 0 }
  if (records.length === 0) { process.stdout.write('no records\n'); return 0 }
  const rows = records.map(r => [
    new Date(r.timestamp).toISOString().replace('T', ' ').slice(0, 19),
    `${r.author.slice(-8)}#${r.seq}`,
    r.source,
    r.body.model.name,
    r.body.workload.name,
    r.body.method.id,
    r.body.result.ok ? r.body.result.outputTokensPerSecond.toFixed(1) : 'error'
  ])
  const head = ['time (UTC)', 'author#seq', 'source', 'model', 'workload', 'method', 'out tok/s']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const fmt = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  process.stdout.write([fmt(head), ...rows.map(fmt), ''].join('\n'))
  return 0
}

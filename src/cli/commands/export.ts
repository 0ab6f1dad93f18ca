import { createWriteStream, type WriteStream } from 'node:fs'
import { once } from 'node:events'
import { parseFlags } from '../args.js'
import { apiGet, apiUrl } from '../../node/api-client.js'
import type { RecordView } from '../../node/routes.js'
import { SwarmtuneError } from '../../util/errors.js'
import { DATA_DIR_HELP } from '../../node/data-dir.js'

const HELP = `usage: swarmtune export [--api URL | --data-dir D [--config F]] [--out FILE] [--json]
Writes every stored record as JSON Lines {id, author, seq, wire}: \`wire\` is the signed record
(base64), so \`swarmtune import FILE\` into any node or data dir verifies and stores it as it is
(authors, seqs and signatures kept). A backup: export --data-dir D (daemon stopped) or --api URL
(daemon running); restore: swarmtune import --data-dir NEW FILE.
--out FILE writes there (default stdout); the count goes to stderr (--json: as {"records": N}).
${DATA_DIR_HELP}`

interface Line { id: string, author: string, seq: number, wire: string }

async function * fromApi (base: string): AsyncGenerator<Line> {
  const params = new URLSearchParams({ limit: '10000', order: 'asc' })
  for (;;) {
    const page = await apiGet<{ records: RecordView[], cursor?: string }>(base, `/records?${params.toString()}`)
    for (const r of page.records) yield { id: r.id, author: r.author, seq: r.seq, wire: r.wire }
    if (page.cursor == null) return
    params.set('cursor', page.cursor)
  }
}

async function * fromDataDir (dataDir: string | undefined, configFile: string | undefined): AsyncGenerator<Line> {
  const [{ openLocalStore }, { wireOf }] = await Promise.all([import('../local-store.js'), import('../../node/import.js')])
  const { store } = await openLocalStore(dataDir, configFile, 'export')
  try {
    for await (const r of store.all()) yield { id: r.id, author: r.body.author, seq: r.body.seq, wire: wireOf(r) }
  } finally {
    await store.stop()
  }
}

async function write (out: NodeJS.WritableStream | WriteStream, line: string): Promise<void> {
  if (!out.write(line)) await once(out, 'drain')
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    api: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.api != null && f['data-dir'] != null) throw new SwarmtuneError('E_USAGE', '--api and --data-dir exclude each other: the daemon uses its own data dir')
  const lines = f['data-dir'] != null || (f.api == null && f.config != null) ? fromDataDir(f['data-dir'], f.config) : fromApi(apiUrl(f.api))
  const out = f.out != null ? createWriteStream(f.out, { mode: 0o600 }) : process.stdout
  let n = 0
  try {
    for await (const l of lines) {
      await write(out, JSON.stringify(l) + '\n')
      n++
    }
  } finally {
    if (out !== process.stdout) await new Promise<void>(resolve => { (out as WriteStream).end(() => { resolve() }) })
  }
  process.stderr.write(f.json === true ? JSON.stringify({ records: n }) + '\n' : `exported ${n} record${n === 1 ? '' : 's'}${f.out != null ? ` to ${f.out}` : ''}\n`)
  return 0
}

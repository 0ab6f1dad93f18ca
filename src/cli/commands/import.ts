import { readFileSync } from 'node:fs'
import { parseFlags, printJson } from '../args.js'
import { apiPost, apiUrl } from '../../node/api-client.js'
import { SwarmtuneError } from '../../util/errors.js'
import type { ImportError } from '../../node/routes.js'

const HELP = `usage: swarmtune import [--api URL] [--json] [--format jsonl|llama-bench] FILE
Imports record bodies into a running node, which signs them as their author (source: import) and
gossips them. FILE holds one JSON body per line (or a JSON array); bad lines are reported by line
number and skipped, good ones kept. --format llama-bench reads \`llama-bench -o jsonl\` output.
`

interface ImportReply { imported: number, ids: string[], errors: ImportError[] }

/** Post in chunks well under the API's 16 MiB body limit; line numbers stay file-relative. */
const CHUNK_BYTES = 4 * 1024 * 1024

async function postJsonl (base: string, text: string): Promise<ImportReply> {
  const total: ImportReply = { imported: 0, ids: [], errors: [] }
  const lines = text.split('\n')
  let start = 0
  while (start < lines.length) {
    let end = start
    let bytes = 0
    while (end < lines.length && (end === start || bytes + lines[end].length < CHUNK_BYTES)) bytes += lines[end++].length + 1
    const reply = await apiPost<ImportReply>(base, '/import', lines.slice(start, end).join('\n'), 'application/x-ndjson')
    total.imported += reply.imported
    total.ids.push(...reply.ids)
    total.errors.push(...reply.errors.map(e => ({ ...e, line: e.line + start })))
    start = end
  }
  return total
}

/** llama-bench output is converted here (src/bench), then posted as a JSON array of bodies. */
async function postLlamaBench (base: string, text: string): Promise<ImportReply> {
  const { importLlamaBench } = await import('../../bench/llama-bench-import.js')
  const { bodies, errors } = importLlamaBench(text)
  if (bodies.length === 0) return { imported: 0, ids: [], errors }
  const reply = await apiPost<ImportReply>(base, '/import', JSON.stringify(bodies))
  return { ...reply, errors: [...errors, ...reply.errors.map(e => ({ ...e, message: `converted row ${e.line}: ${e.message}` }))] }
}

export async function run (argv: string[]): Promise<number> {
  const { values: f, positionals } = parseFlags(argv, {
    api: { type: 'string' },
    json: { type: 'boolean' },
    format: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  }, true)
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (positionals.length !== 1) throw new SwarmtuneError('E_USAGE', 'import needs exactly one FILE (swarmtune import --help)')
  const format = f.format ?? 'jsonl'
  if (format !== 'jsonl' && format !== 'llama-bench') throw new SwarmtuneError('E_USAGE', `--format must be jsonl or llama-bench, got "${format}"`)
  let text: string
  try {
    text = readFileSync(positionals[0], 'utf8')
  } catch (err) {
    throw new SwarmtuneError('E_USAGE', `cannot read ${positionals[0]}: ${(err as Error).message}`)
  }
  const base = apiUrl(f.api)
  const reply = format === 'llama-bench' ? await postLlamaBench(base, text) : await postJsonl(base, text)
  reply.errors.sort((a, b) => a.line - b.line)
  if (f.json === true) {
    printJson(reply)
  } else {
    const out = [`imported ${reply.imported} record${reply.imported === 1 ? '' : 's'}`]
    if (reply.errors.length > 0) out.push(`skipped ${reply.errors.length} bad line${reply.errors.length === 1 ? '' : 's'}:`)
    for (const e of reply.errors) out.push(`  line ${e.line}: ${e.code} ${e.message}`)
    process.stdout.write(out.join('\n') + '\n')
  }
  return reply.errors.length === 0 ? 0 : 1
}

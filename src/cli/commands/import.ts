import { readFileSync } from 'node:fs'
import { parseFlags, printJson } from '../args.js'
import { apiPost, apiUrl } from '../../node/api-client.js'
import { SwarmtuneError, errorCode, errorMessage } from '../../util/errors.js'
import { MAX_REPORTED_ERRORS, type ImportReport } from '../../node/import.js'

const HELP = `usage: swarmtune import [--api URL] [--json] [--format jsonl|llama-bench] FILE
Imports record bodies into a running node, which signs them as their author (source: import) and
gossips them. FILE holds one JSON body per line (or a JSON array); bad lines are reported by line
number and skipped, good ones kept. --format llama-bench reads \`llama-bench -o jsonl\` output.
Safe to re-run: lines this node imported before are skipped (counted as duplicates), so after an
interruption the same command imports the rest.
`

type ImportReply = ImportReport & { interrupted?: { code: string, message: string, linesAcknowledged: number } }

/** Post in chunks (progress is acknowledged per chunk); line numbers stay file-relative. */
const CHUNK_BYTES = 1024 * 1024

function add (total: ImportReply, reply: Partial<ImportReport>, offset: number): void {
  total.imported += reply.imported ?? 0
  total.duplicates += reply.duplicates ?? 0
  total.ids.push(...reply.ids ?? [])
  total.errorCount += reply.errorCount ?? reply.errors?.length ?? 0
  for (const [code, n] of Object.entries(reply.errorsByCode ?? {})) total.errorsByCode[code] = (total.errorsByCode[code] ?? 0) + n
  for (const e of reply.errors ?? []) if (total.errors.length < MAX_REPORTED_ERRORS) total.errors.push({ ...e, line: e.line + offset })
}

async function postJsonl (base: string, text: string): Promise<ImportReply> {
  const total: ImportReply = { imported: 0, duplicates: 0, ids: [], errors: [], errorCount: 0, errorsByCode: {}, lines: 0 }
  const lines = text.split('\n')
  let start = 0
  while (start < lines.length) {
    let end = start
    let bytes = 0
    while (end < lines.length && (end === start || bytes + lines[end].length < CHUNK_BYTES)) bytes += lines[end++].length + 1
    try {
      add(total, await apiPost<ImportReport>(base, '/import', lines.slice(start, end).join('\n'), 'application/x-ndjson'), start)
    } catch (err) {
      // what the daemon acknowledged before it failed or went away stays imported
      const partial = (err as { reply?: Partial<ImportReport> }).reply
      if (partial != null && typeof partial === 'object' && 'imported' in partial) add(total, partial, start)
      total.interrupted = { code: errorCode(err), message: errorMessage(err), linesAcknowledged: start }
      return total
    }
    total.lines = end
    start = end
  }
  return total
}

/** llama-bench output is converted here (src/bench), then posted as a JSON array of bodies. */
async function postLlamaBench (base: string, text: string): Promise<ImportReply> {
  const { importLlamaBench } = await import('../../bench/llama-bench-import.js')
  const { bodies, errors } = importLlamaBench(text)
  const none = { imported: 0, duplicates: 0, ids: [], errorCount: errors.length, errorsByCode: {}, lines: 0 }
  if (bodies.length === 0) return { ...none, errors }
  const reply = await apiPost<ImportReport>(base, '/import', JSON.stringify(bodies))
  return { ...reply, errorCount: reply.errorCount + errors.length, errors: [...errors, ...reply.errors.map(e => ({ ...e, message: `converted row ${e.line}: ${e.message}` }))] }
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
    const out = [`imported ${reply.imported} record${reply.imported === 1 ? '' : 's'}${reply.duplicates > 0 ? ` (${reply.duplicates} already imported, skipped)` : ''}`]
    if (reply.errorCount > 0) out.push(`skipped ${reply.errorCount} bad line${reply.errorCount === 1 ? '' : 's'}${reply.errorCount > reply.errors.length ? ` (the first ${reply.errors.length} listed; by code: ${JSON.stringify(reply.errorsByCode)})` : ''}:`)
    for (const e of reply.errors) out.push(`  line ${e.line}: ${e.code} ${e.message}`)
    process.stdout.write(out.join('\n') + '\n')
  }
  const stop = reply.interrupted
  if (stop != null) {
    process.stderr.write(`swarmtune: import interrupted after line ${stop.linesAcknowledged} of ${positionals[0]} (${reply.imported} imported so far): ${stop.message} [${stop.code}]\n` +
      'run the same command again to import the rest: lines already imported are skipped\n')
    return 1
  }
  return reply.errorCount === 0 ? 0 : 1
}

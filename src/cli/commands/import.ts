import { readFileSync } from 'node:fs'
import { parseFlags, printJson } from '../args.js'
import { apiPost, apiUrl } from '../../node/api-client.js'
import { SwarmtuneError, errorCode, errorMessage } from '../../util/errors.js'
import { MAX_REPORTED_ERRORS, type ImportReport } from '../../node/import.js'
import type { LlamaBenchImportOptions } from '../../bench/llama-bench-import.js'
import type { SignedRecord } from '../../records/types.js'
import type { OwnRecordsWriter } from '../../contracts/records.js'
import { DATA_DIR_HELP } from '../../node/data-dir.js'
import { TABLE_PRESETS, TableImportError, type TableMapping } from '../../bench/table-import.js'

const PRESETS = Object.keys(TABLE_PRESETS).join(', ')

const HELP = `usage: swarmtune import [--api URL | --data-dir D [--config F]] [--json] [--format jsonl|llama-bench|csv] [host facts] FILE
       swarmtune import --format csv (--map MAPPING.json | --preset NAME) [host facts] [--api URL | --data-dir D] FILE
Imports record bodies into a running node, which signs them as their author (source: import) and
gossips them. FILE holds one JSON body per line (or a JSON array); bad lines are reported by line
number and skipped, good ones kept.

Signed records (lines with \`wire\`: \`swarmtune export\`, \`history --json\`, a backup) are
verified and stored as they are: authors, seqs and signatures kept, nothing re-signed; a record
whose signature does not verify is that line's error. --data-dir D imports into a data dir with
no daemon running (a new one is created: restoring a backup into an empty dir). --format llama-bench reads \`llama-bench -o jsonl\` (or -o json)
output. Safe to re-run: lines this node imported before are skipped (counted as duplicates), so
after an interruption the same command imports the rest.

--format csv reads a published results table (src/bench/table-import.ts): --map MAPPING.json names
the columns (hardware, devices, model, inputLength, outputLength, batch, method [..], throughput,
latencySeconds, synonyms, joinExtraComma, knobs), or --preset is one of
${PRESETS}. Each good row becomes a body (source: import),
signed by the node (--api) or the data dir's identity (--data-dir); each bad row is an error with
its 1-based line in FILE, and nothing of it is stored.

--json: {imported, duplicates, errors: [{line, code, message}] (the first ${MAX_REPORTED_ERRORS}), errorCounts: {CODE: n}, ...}.
Exit code: 0 when every line was imported or already stored, 1 when some failed, 2 on a usage error.

Host facts (llama-bench and csv: neither gives RAM or core count; for csv, --gpu NAME:VRAM gives
the VRAM of the rows whose device is NAME):
  --host-json FILE   {"cpu": "...", "cores": 96, "ramMiB": 786432, "os": "linux-x64",
                     "pricePerHour": 2.5, "gpus": [{"name": "NVIDIA H100 80GB HBM3", "vramMiB": 81559}]}
  --cpu NAME  --cores N  --ram-mib N  --os NAME  --price USD_PER_HOUR
  --gpu NAME[:VRAM_MIB]   repeat once per device; replaces the file's gpu_info
Flags override the JSON file.
${DATA_DIR_HELP}`

type ImportReply = ImportReport & { interrupted?: { code: string, message: string, linesAcknowledged: number } }

/** Post in chunks (progress is acknowledged per chunk); line numbers stay file-relative. */
const CHUNK_BYTES = 1024 * 1024

function add (total: ImportReply, reply: Partial<ImportReport>, offset: number): void {
  total.imported += reply.imported ?? 0
  total.duplicates += reply.duplicates ?? 0
  total.ids.push(...reply.ids ?? [])
  total.signed = (total.signed ?? 0) + (reply.signed ?? 0)
  total.equivocations = (total.equivocations ?? 0) + (reply.equivocations ?? 0)
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

type HostFacts = LlamaBenchImportOptions

function positiveNumber (v: unknown, what: string): number {
  const n = typeof v === 'string' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new SwarmtuneError('E_USAGE', `${what} must be a non-negative number, got ${JSON.stringify(v)}`)
  return n
}

/** --host-json and the host flags → importer options (flags win). */
export function hostFacts (f: Record<string, string | string[] | boolean | undefined>): HostFacts {
  const out: HostFacts = {}
  if (typeof f['host-json'] === 'string') {
    let j: Record<string, unknown>
    try {
      j = JSON.parse(readFileSync(f['host-json'], 'utf8')) as Record<string, unknown>
    } catch (err) {
      throw new SwarmtuneError('E_USAGE', `cannot read --host-json ${f['host-json']}: ${(err as Error).message}`)
    }
    if (j == null || typeof j !== 'object' || Array.isArray(j)) throw new SwarmtuneError('E_USAGE', '--host-json must hold a JSON object')
    if (j.cpu !== undefined) out.cpuModel = String(j.cpu)
    if (j.cores !== undefined) out.cores = positiveNumber(j.cores, 'host-json cores')
    if (j.ramMiB !== undefined) out.ramMiB = positiveNumber(j.ramMiB, 'host-json ramMiB')
    if (j.os !== undefined) out.os = String(j.os)
    if (j.pricePerHour !== undefined) out.pricePerHour = positiveNumber(j.pricePerHour, 'host-json pricePerHour')
    if (j.gpus !== undefined) {
      if (!Array.isArray(j.gpus)) throw new SwarmtuneError('E_USAGE', 'host-json gpus must be an array')
      out.gpus = j.gpus.map((g: unknown, i: number) => {
        const o = g as { name?: unknown, vramMiB?: unknown }
        if (o == null || typeof o.name !== 'string' || o.name === '') throw new SwarmtuneError('E_USAGE', `host-json gpus[${i}] needs a name`)
        return { name: o.name, vramMiB: o.vramMiB === undefined ? 0 : positiveNumber(o.vramMiB, `host-json gpus[${i}].vramMiB`) }
      })
    }
  }
  if (typeof f.cpu === 'string') out.cpuModel = f.cpu
  if (typeof f.cores === 'string') out.cores = positiveNumber(f.cores, '--cores')
  if (typeof f['ram-mib'] === 'string') out.ramMiB = positiveNumber(f['ram-mib'], '--ram-mib')
  if (typeof f.os === 'string') out.os = f.os
  if (typeof f.price === 'string') out.pricePerHour = positiveNumber(f.price, '--price')
  if (Array.isArray(f.gpu) && f.gpu.length > 0) {
    out.gpus = f.gpu.map(g => {
      const m = /^(.*?)(?::(\d+(?:\.\d+)?))?$/.exec(g) as RegExpExecArray
      if (m[1].trim() === '') throw new SwarmtuneError('E_USAGE', `--gpu needs a name, got "${g}"`)
      return { name: m[1].trim(), vramMiB: m[2] === undefined ? 0 : Number(m[2]) }
    })
  }
  return out
}

/** llama-bench output is converted here (src/bench), then posted as a JSON array of bodies. */
async function postLlamaBench (base: string, text: string, facts: HostFacts): Promise<ImportReply> {
  const { importLlamaBench } = await import('../../bench/llama-bench-import.js')
  const { bodies, errors } = importLlamaBench(text, facts)
  const none = { imported: 0, duplicates: 0, ids: [], errorCount: errors.length, errorsByCode: {}, lines: 0 }
  if (bodies.length === 0) return { ...none, errors }
  const reply = await apiPost<ImportReport>(base, '/import', JSON.stringify(bodies))
  return { ...reply, errorCount: reply.errorCount + errors.length, errors: [...errors, ...reply.errors.map(e => ({ ...e, message: `converted row ${e.line}: ${e.message}` }))] }
}

/** A JSON array file (`history --json`) as JSON Lines, so it is posted in acknowledged chunks too. */
export function asJsonLines (text: string): string {
  if (!text.trimStart().startsWith('[')) return text
  let arr: unknown
  try {
    arr = JSON.parse(text)
  } catch (err) {
    throw new SwarmtuneError('E_BAD_JSON', `the file looks like a JSON array but does not parse: ${(err as Error).message}`)
  }
  if (!Array.isArray(arr)) throw new SwarmtuneError('E_BAD_JSON', 'the file must hold a JSON array or JSON Lines')
  return arr.map(v => JSON.stringify(v)).join('\n')
}

/** Import into a data dir with no daemon: unsigned bodies are signed with the dir's identity. */
async function intoDataDir (dataDir: string, configFile: string | undefined, text: string): Promise<ImportReply> {
  const [{ openLocalStore }, { importStream, storeSink }, { createRecord }] = await Promise.all([
    import('../local-store.js'), import('../../node/import.js'), import('../../records/sign.js')
  ])
  const { store, privateKey, author } = await openLocalStore(dataDir, configFile, 'import')
  try {
    // the daemon's own-record path in small: next seqs, signed, stored durably as own with the line keys
    const ownRecords: OwnRecordsWriter = async (bodies, opts = {}) => {
      let seq = await store.nextSeq(author)
      const records: SignedRecord[] = []
      for (const b of bodies) records.push(await createRecord(privateKey, author, seq++, b))
      await store.putMany(records, { own: true, tags: opts.tags })
      return records
    }
    const tagged = store.tagged?.bind(store)
    const chunks = (async function * () { yield Buffer.from(asJsonLines(text)) })()
    return await importStream(chunks, { author, ownRecords, signed: storeSink(store, author), tagged })
  } finally {
    await store.stop()
  }
}

/** --map FILE or --preset NAME → the table mapping (usage errors: exit 2). */
function tableMapping (map: string | undefined, preset: string | undefined): TableMapping {
  if ((map == null) === (preset == null)) throw new SwarmtuneError('E_USAGE', `--format csv needs exactly one of --map MAPPING.json or --preset NAME (${PRESETS})`)
  if (preset != null) {
    const m = TABLE_PRESETS[preset]
    if (m == null) throw new SwarmtuneError('E_USAGE', `unknown --preset "${preset}" (known: ${PRESETS})`)
    return m
  }
  let m: unknown
  try {
    m = JSON.parse(readFileSync(map as string, 'utf8'))
  } catch (err) {
    throw new SwarmtuneError('E_USAGE', `cannot read --map ${String(map)}: ${(err as Error).message}`)
  }
  const o = m as Partial<TableMapping> | null
  const str = (v: unknown): boolean => typeof v === 'string' && v !== ''
  if (o == null || typeof o !== 'object' || Array.isArray(o) || !str(o.hardware) || !str(o.model) || !str(o.inputLength) || !str(o.throughput) ||
    !Array.isArray(o.method) || o.method.length === 0 || !o.method.every(str)) {
    throw new SwarmtuneError('E_USAGE', `--map ${String(map)} must be a JSON object with string columns hardware, model, inputLength, throughput and a non-empty array method`)
  }
  for (const k of ['devices', 'outputLength', 'batch', 'latencySeconds', 'joinExtraComma'] as const) {
    if (o[k] !== undefined && !str(o[k])) throw new SwarmtuneError('E_USAGE', `--map ${String(map)}: ${k} must name a column`)
  }
  return o as TableMapping
}

/**
 * A CSV table converted here (src/bench), then imported as bodies through the daemon or into the
 * data dir; the import's per-body errors are mapped back to the table's lines.
 */
async function importCsv (text: string, mapping: TableMapping, facts: HostFacts, into: (jsonl: string) => Promise<ImportReply>): Promise<ImportReply> {
  const { importTable } = await import('../../bench/table-import.js')
  const t = importTable(text, mapping, facts)
  const total: ImportReply = { imported: 0, duplicates: 0, ids: [], errors: [], errorCount: 0, errorsByCode: {}, lines: text.split(/\r?\n/).length }
  for (const e of t.errors) {
    total.errorCount++
    total.errorsByCode[e.code] = (total.errorsByCode[e.code] ?? 0) + 1
    if (total.errors.length < MAX_REPORTED_ERRORS) total.errors.push(e)
  }
  if (t.bodies.length === 0) return total
  const reply = await into(t.bodies.map(b => JSON.stringify(b)).join('\n'))
  add(total, { ...reply, errors: [] }, 0)
  for (const e of reply.errors) if (total.errors.length < MAX_REPORTED_ERRORS) total.errors.push({ ...e, line: t.bodyLines[e.line - 1] ?? e.line })
  if (reply.interrupted != null) total.interrupted = { ...reply.interrupted, linesAcknowledged: t.bodyLines[reply.interrupted.linesAcknowledged - 1] ?? 0 }
  return total
}

/** Usage errors (flags, unreadable files, a mapping that names missing columns) exit 2, as #16 asks. */
export async function run (argv: string[]): Promise<number> {
  try {
    return await runImport(argv)
  } catch (err) {
    const code = errorCode(err)
    if (code !== 'E_USAGE' && code !== 'E_TABLE_MAPPING' && !(err instanceof TableImportError)) throw err
    process.stderr.write(`swarmtune: ${errorMessage(err)} [${code}]\n`)
    return 2
  }
}

async function runImport (argv: string[]): Promise<number> {
  const { values: f, positionals } = parseFlags(argv, {
    api: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    json: { type: 'boolean' },
    format: { type: 'string' },
    'host-json': { type: 'string' },
    cpu: { type: 'string' },
    cores: { type: 'string' },
    'ram-mib': { type: 'string' },
    os: { type: 'string' },
    price: { type: 'string' },
    gpu: { type: 'string', multiple: true },
    map: { type: 'string' },
    preset: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  }, true)
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (positionals.length !== 1) throw new SwarmtuneError('E_USAGE', 'import needs exactly one FILE (swarmtune import --help)')
  const format = f.format ?? 'jsonl'
  if (format !== 'jsonl' && format !== 'llama-bench' && format !== 'csv') throw new SwarmtuneError('E_USAGE', `--format must be jsonl, llama-bench or csv, got "${format}"`)
  if (format !== 'csv' && (f.map != null || f.preset != null)) throw new SwarmtuneError('E_USAGE', '--map and --preset apply to --format csv only')
  const mapping = format === 'csv' ? tableMapping(f.map, f.preset) : undefined
  let text: string
  try {
    text = readFileSync(positionals[0], 'utf8')
  } catch (err) {
    throw new SwarmtuneError('E_USAGE', `cannot read ${positionals[0]}: ${(err as Error).message}`)
  }
  const facts = hostFacts(f)
  if (format === 'jsonl' && Object.keys(facts).length > 0) throw new SwarmtuneError('E_USAGE', 'host facts apply to --format llama-bench and csv only (JSONL bodies carry their own hardware)')
  if (f.api != null && f['data-dir'] != null) throw new SwarmtuneError('E_USAGE', '--api and --data-dir exclude each other: the daemon uses its own data dir')
  if (f['data-dir'] != null && format === 'llama-bench') throw new SwarmtuneError('E_USAGE', '--data-dir imports JSONL records and CSV tables; import llama-bench output through a daemon (--api)')
  const dataDir = f['data-dir']
  const into = async (jsonl: string): Promise<ImportReply> => dataDir != null ? await intoDataDir(dataDir, f.config, jsonl) : await postJsonl(apiUrl(f.api), jsonl)
  const reply = mapping != null
    ? await importCsv(text, mapping, facts, into)
    : format === 'llama-bench' ? await postLlamaBench(apiUrl(f.api), text, facts) : await into(asJsonLines(text))
  reply.errors.sort((a, b) => a.line - b.line)
  if (f.json === true) {
    // errorCounts: the name #16's machine-readable report gives errorsByCode
    printJson({ ...reply, errorCounts: reply.errorsByCode })
  } else {
    const signed = (reply.signed ?? 0) > 0 ? `, ${reply.signed ?? 0} of them signed records kept as they are` : ''
    const out = [`imported ${reply.imported} record${reply.imported === 1 ? '' : 's'}${signed}${reply.duplicates > 0 ? ` (${reply.duplicates} already stored, skipped)` : ''}`]
    if ((reply.equivocations ?? 0) > 0) out.push(`${reply.equivocations ?? 0} signed record(s) conflict with a stored one of the same author and seq (kept as evidence)`)
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

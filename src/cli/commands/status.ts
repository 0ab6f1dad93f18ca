import { parseFlags, printJson } from '../args.js'
import { apiGet, apiUrl } from '../../node/api-client.js'

const HELP = `usage: swarmtune status [--api URL] [--json]
Shows a running node's peer id, addresses, peers, record counts, rejection counters and the
meta-model snapshot it chooses with.
`

interface Status {
  peerId: string
  addresses: string[]
  peers: number
  records: number
  own: number
  authors: number
  equivocations: number
  rejected: Record<string, number>
  net: Record<string, number>
  uptime: number
  [k: string]: unknown
}

function duration (s: number): string {
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

interface Snapshot { rows: number, trainedAt: number, backend: string, hash: string }

interface BackgroundView { enabled: boolean, phase?: string, cell?: { workload: string, method: string, reason?: string } | null, spentShare?: number, cellsDone?: number, busyMs?: number, lastError?: { code: string, message: string } | null }

/** What the background sweep is doing and what it has cost, as one line. */
export function backgroundLine (b: BackgroundView | null | undefined): string {
  if (b == null) return 'not running (no bench service)'
  if (!b.enabled) return 'off (bench.background.enabled false, or start --no-background)'
  const doing = b.phase === 'stopped' ? 'stopped' : b.cell != null ? `measuring ${b.cell.method} on ${b.cell.workload}${b.cell.reason != null ? ` (${b.cell.reason})` : ''}` : `idle (${b.phase ?? 'waiting'})`
  const spent = `${b.cellsDone ?? 0} cells, ${duration(Math.round((b.busyMs ?? 0) / 1000))} busy, ${((b.spentShare ?? 0) * 100).toFixed(1)} % of wall time`
  return `${doing}; ${spent}${b.lastError != null ? `; last error ${b.lastError.code}: ${b.lastError.message}` : ''}`
}

/** The meta-model snapshot the node chooses with, as one line. */
export function snapshotLine (s: Snapshot | null | undefined, now = Date.now()): string {
  if (s == null) return 'no snapshot yet (cold start: default rule and committee)'
  return `${s.backend} on ${s.rows} rows, trained ${duration(Math.max(0, Math.round((now - s.trainedAt) / 1000)))} ago (${s.hash.slice(0, 12)})`
}

/** How far the predictions for served tasks were off (mean |ln predicted − ln realized|). */
function servedErrorLine (meta: { servedPredictionError?: number | null, servedPredictions?: number } | undefined): string[] {
  const e = meta?.servedPredictionError
  if (e == null) return []
  return [`served     prediction error ${e.toFixed(3)} (mean |ln predicted/realized| throughput, ×${Math.exp(e).toFixed(2)})`]
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, { api: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  const s = await apiGet<Status>(apiUrl(f.api), '/status')
  if (f.json === true) { printJson(s); return 0 }
  const rejected = Object.entries(s.rejected)
  const net = Object.entries(s.net ?? {})
  process.stdout.write([
    `peer       ${s.peerId}`,
    ...s.addresses.map((a, i) => `${i === 0 ? 'addresses ' : '          '} ${a}`),
    `peers      ${s.peers}`,
    `records    ${s.records} (own ${s.own}, authors ${s.authors}, equivocations ${s.equivocations})`,
    `rejected   ${rejected.length === 0 ? 'none' : rejected.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...(net.length > 0 ? [`network    ${net.map(([k, v]) => `${k} ${v}`).join(', ')}`] : []),
    `model      ${snapshotLine(s.snapshot as Snapshot | null | undefined)}`,
    `background ${backgroundLine((s.bench as { background?: BackgroundView } | undefined)?.background)}`,
    ...(servedErrorLine(s.meta as { servedPredictionError?: number | null } | undefined)),
    `uptime     ${duration(s.uptime)}`,
    ''
  ].join('\n'))
  return 0
}

import { parseFlags, printJson } from '../args.js'
import { apiGet, apiUrl } from '../../node/api-client.js'

const HELP = `usage: swarmtune status [--api URL] [--json] [--eval]
Shows a running node's peer id, addresses, peers, record counts, rejection counters and the
meta-model snapshot it chooses with.
  --eval   instead: how good the node's choices are, from its own evaluation after each training
           (GET /meta/eval): the latest table on held-out folds of its history and the learning
           curve. --json: {latest: {split, folds, tasks, rows, grouping} | null,
           curve: [{at, records, authors, tasks, split, rows: [{selector, top1, regret, default?}]}]}
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

interface EvalView {
  latest: { split: string, folds: number, tasks: number, grouping: string, rows: Array<{ selector: string, top1: number, regret: number, default?: true }> } | null
  curve: Array<{ at: number, records: number, authors: number, rows: Array<{ selector: string, regret: number, default?: true }> }>
}

/** `status --eval` as text: the latest table, then the curve's first and last points. */
export function evalLines (e: EvalView, now = Date.now()): string[] {
  if (e.latest == null) return ['no evaluation yet (it follows a training once the history has enough tasks with a choice)']
  const l = e.latest
  const point = (p: EvalView['curve'][number]): string => {
    const def = p.rows.find(r => r.default === true)
    const sb = p.rows.find(r => r.selector === 'single-best')
    return `${duration(Math.max(0, Math.round((now - p.at) / 1000)))} ago: ${p.records} records, ${p.authors} authors, default regret ${def?.regret.toFixed(3) ?? '-'}, single-best ${sb?.regret.toFixed(3) ?? '-'}`
  }
  return [
    `split ${l.split} (held out by ${l.grouping}, ${l.folds} folds, ${l.tasks} tasks)`,
    ...l.rows.map(r => `  ${(r.selector + (r.default === true ? ' *' : '')).padEnd(34)} top1 ${r.top1.toFixed(3)}  regret ${r.regret.toFixed(3)}`),
    `curve: ${e.curve.length} points`,
    ...(e.curve.length > 1 ? [`  first ${point(e.curve[0])}`] : []),
    ...(e.curve.length > 0 ? [`  last  ${point(e.curve[e.curve.length - 1])}`] : [])
  ]
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, { api: { type: 'string' }, json: { type: 'boolean' }, eval: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.eval === true) {
    const e = await apiGet<EvalView>(apiUrl(f.api), '/meta/eval')
    if (f.json === true) printJson(e)
    else process.stdout.write(evalLines(e).join('\n') + '\n')
    return 0
  }
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

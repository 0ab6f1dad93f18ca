import { readFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { parseFlags, printJson } from '../args.js'
import { parseRecommendRequest, requestRecommendation, type RecommendResponse } from '../../net/recommend.js'
import { createClientNode } from '../../net/rpc/client.js'
import { SwarmtuneError, errorMessage } from '../../util/errors.js'

const HELP = `usage: swarmtune recommend --peer MULTIADDR --task FILE.json [--json] [--committee] [--timeout MS]
Asks a peer, over /swarmtune/recommend/1.0.0, which acceleration method to use for a task. Dials
with a throwaway identity (no listening, no state). The task file is a JSON object:
  { "model": "<id | name | descriptor>",
    "workload": { "features": { ... } }   or   "prompts": ["...", ...], "maxTokens": 32,
    "objective": "throughput" | "latency" | "cost",
    "budget": USD, "slo": { "ttftMs": 200 }, "hardware": { cores, threads, ramMiB, gpus, backend } }
--committee also prints the committee tally and the voters' weights for the task's class.
--json prints { ranking: [{ method, predicted, uncertainty }], evidence: { records, authors, snapshot }, coldStart, ... }
`

function fmt (x: unknown, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toPrecision(digits) : '-'
}

interface CommitteeOut {
  classes: Array<{ key: string, voters: number, totalWeight: number, ranking: Array<{ method: string, score: number, voters: number }> }>
  weights: Array<{ author: string, weight: number, updates: number, self: boolean }>
}

function printHuman (res: RecommendResponse): void {
  const lines = [
    `class      ${res.taskClass}`,
    `objective  ${res.objective}`,
    `source     ${res.source}${res.coldStart ? ' (cold start)' : ''}`,
    `evidence   ${res.evidence.records} records from ${res.evidence.authors} authors, model snapshot ${res.evidence.snapshot ?? 'none'}`,
    ...(res.reason != null ? [`reason     ${res.reason}`] : []),
    '',
    `  #  ${'method'.padEnd(26)} ${'speedup'.padStart(8)} ${'wall ms'.padStart(9)} ${'TTFT ms'.padStart(9)} ${'±'.padStart(6)}`
  ]
  res.ranking.forEach((r, i) => {
    const p = r.predicted
    lines.push(`${String(i + 1).padStart(3)}  ${r.method.padEnd(26)} ${fmt(p.speedup).padStart(8)} ${fmt(p.wallMs, 4).padStart(9)} ${fmt(p.ttftMs, 4).padStart(9)} ${fmt(r.uncertainty, 2).padStart(6)}${r.feasible === false ? `  (infeasible: ${r.reason ?? ''})` : ''}`)
  })
  const c = res.committee as CommitteeOut | undefined
  if (c != null) {
    lines.push('')
    if (c.classes.length === 0) lines.push('committee  no votes for this class yet')
    for (const cl of c.classes) {
      lines.push(`committee  ${cl.voters} voters, total weight ${fmt(cl.totalWeight)}`)
      for (const e of cl.ranking) lines.push(`           ${e.method.padEnd(26)} Borda ${e.score.toFixed(3)}  (${e.voters} ballots)`)
    }
    if (c.weights.length > 0) {
      lines.push('weights')
      for (const w of c.weights) lines.push(`           ${w.author}  ${w.weight.toFixed(3)}  (${w.updates} updates${w.self ? ', this peer' : ''})`)
    }
  }
  process.stdout.write(lines.join('\n') + '\n')
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    peer: { type: 'string' },
    task: { type: 'string' },
    json: { type: 'boolean' },
    committee: { type: 'boolean' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.peer == null || f.task == null) throw new SwarmtuneError('E_USAGE', '--peer MULTIADDR and --task FILE.json are required (see --help)')
  let addr
  try { addr = multiaddr(f.peer) } catch (err) { throw new SwarmtuneError('E_USAGE', `--peer is not a multiaddr: ${errorMessage(err)}`) }
  let task: Record<string, unknown>
  try {
    task = JSON.parse(readFileSync(f.task, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new SwarmtuneError('E_TASK_FILE', `cannot read task file ${f.task}: ${errorMessage(err)}`)
  }
  if (task == null || typeof task !== 'object' || Array.isArray(task)) throw new SwarmtuneError('E_TASK_FILE', `${f.task} must hold a JSON object`)
  if (f.committee === true) task.committee = true
  // check locally first: a bad file gets a precise message without a round trip
  parseRecommendRequest(task)
  const timeoutMs = f.timeout != null ? Number(f.timeout) : 15_000
  const node = await createClientNode()
  try {
    const res = await requestRecommendation(node, addr, task, { timeoutMs })
    if (f.json === true) printJson(res)
    else printHuman(res)
    return 0
  } finally {
    await node.stop()
  }
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { intFlag, parseFlags } from '../args.js'
import { apiGet, apiPost } from '../../node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../testbed/processes.js'
import { waitFor } from '../../util/wait.js'
import { synthBodies } from '../../records/synthetic.js'
import { SwarmtuneError } from '../../util/errors.js'
import { ATTACKS, DEFAULT_ATTACK_OPTIONS, runAttack, type Attack, type AttackReport } from '../../testbed/attack-harness.js'
import { DEFAULT_LEARN_OPTIONS, runLearn, samplesCsv } from '../../testbed/learn.js'
import { FAMILIES, isFamily } from '../../bench/workloads.js'

const HELP = `usage: swarmtune testbed [--peers N] [--base-port P] [--json] [--exit]
Starts N daemons as separate processes on 127.0.0.1, each with its own temporary data dir,
peers 2..N bootstrapped to peer 1; waits until they are connected, imports one record on peer 1
and reports when it has reached every peer. Runs until Ctrl-C (or exits at once with --exit).
Peer i listens on P+2(i-1) (libp2p) and P+2(i-1)+1 (control API); without --base-port, on
free ports. The same swarm as docker-compose.yml, without Docker.

Attack mode (issue #7, docs/SECURITY.md):
  swarmtune testbed --peers N --byzantine K --attack inflate|deflate|sybil|flood|equivocate|none [--json]
    [--history FILE.jsonl] [--machines M] [--workloads W] [--replication R] [--noise S] [--seed S]
    [--sybils 200] [--flood-rate 5000] [--flood-seconds 10] [--publish-rate 80]
Honest daemons hold a history (FILE.jsonl of record bodies, else the structured synthetic one),
each task on R honest peers; the attack runs; prints honest top-1/regret against the history's
truth before and under attack, rejections, graylisted peers and recommend p99 during the attack.

Learning curve (issue #17 item 6):
  swarmtune testbed --scenario learn [--peers 3] [--minutes 8] [--model tiny]
    [--families chat,docqa,classify] [--table-repeats 9] [--window-seconds 60] [--pace-seconds 1]
    [--sample-seconds 10] [--eval-seconds 30] [--share 0.5] [--out FILE.json] [--csv FILE.csv] [--json]
First a lone daemon measures every method on the task types (the families' tiny-scale
workloads, median of --table-repeats runs: the ground-truth table of this machine) and stops. Then N fresh daemons
with the background sweep on serve a paced stream of those task types for M minutes
(POST /v1/completions, round-robin over the peers; each answer's swarmtune.method says which
method served it). Per window: mean regret 1 - perf(chosen)/perf(best in the table) of the
served choices, next to always-baseline and always-single-best (single best in hindsight).
--json prints {windows: [{t, regret, baselineRegret, singleBestRegret, served}], peers, ...}
(t: seconds since the swarm's first daemon started, at the window's end; also the table, every
served task, and the daemons' own held-out curve under heldOut); --csv writes those samples.
`

interface Status { peerId: string, peers: number, records: number }

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    peers: { type: 'string' },
    'base-port': { type: 'string' },
    json: { type: 'boolean' },
    exit: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    byzantine: { type: 'string' },
    attack: { type: 'string' },
    history: { type: 'string' },
    machines: { type: 'string' },
    workloads: { type: 'string' },
    replication: { type: 'string' },
    noise: { type: 'string' },
    seed: { type: 'string' },
    sybils: { type: 'string' },
    'flood-rate': { type: 'string' },
    'flood-seconds': { type: 'string' },
    'publish-rate': { type: 'string' },
    scenario: { type: 'string' },
    minutes: { type: 'string' },
    model: { type: 'string' },
    'sample-seconds': { type: 'string' },
    'eval-seconds': { type: 'string' },
    share: { type: 'string' },
    out: { type: 'string' },
    csv: { type: 'string' },
    families: { type: 'string' },
    'window-seconds': { type: 'string' },
    'pace-seconds': { type: 'string' },
    'table-repeats': { type: 'string' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.attack != null) return await attackMode(f as Record<string, string | boolean | undefined>)
  if (f.scenario != null) {
    if (f.scenario !== 'learn') throw new SwarmtuneError('E_USAGE', '--scenario must be learn')
    return await learnMode(f as Record<string, string | boolean | undefined>)
  }
  const n = intFlag(f.peers, 'peers', 3)
  if (n < 2) throw new SwarmtuneError('E_USAGE', '--peers must be at least 2')
  const base = intFlag(f['base-port'], 'base-port', 0)
  const say = (line: string): void => { if (f.json !== true) process.stdout.write(line + '\n') }

  const root = mkdtempSync(join(tmpdir(), 'swarmtune-testbed-'))
  const daemons: DaemonProcess[] = []
  const port = (i: number, api: number): number => base === 0 ? 0 : base + 2 * i + api
  const shutdown = async (): Promise<void> => {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    rmSync(root, { recursive: true, force: true })
  }

  try {
    const t0 = Date.now()
    daemons.push(await spawnDaemon({ dataDir: join(root, 'peer1'), port: port(0, 0), apiPort: port(0, 1) }))
    const boot = loopbackAddr(daemons[0].info)
    say(`peer 1  ${daemons[0].info.peerId}  api ${daemons[0].info.api}`)
    const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, k) =>
      await spawnDaemon({ dataDir: join(root, `peer${k + 2}`), port: port(k + 1, 0), apiPort: port(k + 1, 1), bootstrap: [boot] })))
    daemons.push(...rest)
    rest.forEach((d, k) => { say(`peer ${k + 2}  ${d.info.peerId}  api ${d.info.api}`) })

    // connected: peer 1 sees everyone, everyone sees at least peer 1
    await waitFor('every peer to connect', async () => {
      const st = await Promise.all(daemons.map(async d => await apiGet<Status>(d.info.api, '/status')))
      return st[0].peers >= n - 1 && st.every(s => s.peers >= 1)
    }, 60_000, 100)
    const connectedMs = Date.now() - t0
    say(`${n} peers connected after ${connectedMs} ms`)

    // one record imported on peer 1: how long until every other peer has stored it
    const [body] = synthBodies(1, Date.now() % 1_000_000)
    const sent = Date.now()
    const reply = await apiPost<{ ids: string[] }>(daemons[0].info.api, '/import', JSON.stringify([body]))
    const id = reply.ids[0]
    const author = daemons[0].info.peerId
    const arrivals = await Promise.all(daemons.slice(1).map(async d => await waitFor(`record ${id} on ${d.info.peerId}`, async () => {
      const page = await apiGet<{ records: Array<{ id: string }> }>(d.info.api, `/records?author=${author}&order=desc&limit=5`)
      return page.records.some(r => r.id === id) ? Date.now() - sent : undefined
    }, 60_000, 10)))
    const propagationMs = Math.max(...arrivals)
    say(`record ${id.slice(0, 16)} imported on peer 1 reached all ${n - 1} other peers in ${propagationMs} ms`)

    if (f.json === true) {
      process.stdout.write(JSON.stringify({ peers: daemons.map(d => d.info), connectedMs, recordId: id, propagationMs, arrivalsMs: arrivals }) + '\n')
    }
    if (f.exit !== true) {
      say('testbed running: try `swarmtune status --api <url>`; Ctrl-C to stop')
      await new Promise<void>(resolve => {
        process.once('SIGINT', () => { resolve() })
        process.once('SIGTERM', () => { resolve() })
        // a daemon dying ends the testbed too
        for (const d of daemons) void d.exited.then(() => { resolve() })
      })
      say('stopping...')
    }
    return 0
  } finally {
    await shutdown()
  }
}

function numFlag (v: unknown, name: string, dflt: number): number {
  if (v == null) return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new SwarmtuneError('E_USAGE', `--${name} must be a non-negative number`)
  return n
}

async function attackMode (f: Record<string, string | boolean | undefined>): Promise<number> {
  const attack = f.attack as Attack
  if (!ATTACKS.includes(attack)) throw new SwarmtuneError('E_USAGE', `--attack must be one of ${ATTACKS.join(', ')}`)
  const d = DEFAULT_ATTACK_OPTIONS
  const json = f.json === true
  const report = await runAttack({
    attack,
    peers: intFlag(f.peers as string | undefined, 'peers', d.peers),
    byzantine: intFlag(f.byzantine as string | undefined, 'byzantine', d.byzantine),
    historyFile: f.history as string | undefined,
    machines: intFlag(f.machines as string | undefined, 'machines', d.machines),
    workloads: intFlag(f.workloads as string | undefined, 'workloads', d.workloads),
    replication: intFlag(f.replication as string | undefined, 'replication', d.replication),
    noise: numFlag(f.noise, 'noise', d.noise),
    seed: intFlag(f.seed as string | undefined, 'seed', d.seed),
    sybils: intFlag(f.sybils as string | undefined, 'sybils', d.sybils),
    floodRate: numFlag(f['flood-rate'], 'flood-rate', d.floodRate),
    floodSeconds: numFlag(f['flood-seconds'], 'flood-seconds', d.floodSeconds),
    publishRate: numFlag(f['publish-rate'], 'publish-rate', d.publishRate),
    progress: line => { if (!json) process.stdout.write(line + '\n') }
  })
  if (json) process.stdout.write(JSON.stringify(report) + '\n')
  else process.stdout.write(formatReport(report))
  return 0
}

async function learnMode (f: Record<string, string | boolean | undefined>): Promise<number> {
  const d = DEFAULT_LEARN_OPTIONS
  const json = f.json === true
  const peers = intFlag(f.peers as string | undefined, 'peers', d.peers)
  if (peers < 2) throw new SwarmtuneError('E_USAGE', '--peers must be at least 2')
  const share = numFlag(f.share, 'share', d.share)
  if (share <= 0 || share > 1) throw new SwarmtuneError('E_USAGE', '--share must be in (0, 1]')
  const families = typeof f.families === 'string' ? f.families.split(',').map(x => x.trim()).filter(x => x !== '') : d.families
  for (const fam of families) if (!isFamily(fam)) throw new SwarmtuneError('E_USAGE', `unknown family "${fam}" in --families (known: ${FAMILIES.join(', ')})`)
  if (families.length === 0) throw new SwarmtuneError('E_USAGE', '--families must name at least one family')
  const tableRepeats = intFlag(f['table-repeats'] as string | undefined, 'table-repeats', d.tableRepeats)
  if (tableRepeats < 1 || tableRepeats > 100) throw new SwarmtuneError('E_USAGE', '--table-repeats must be in [1, 100]')
  const windowSeconds = numFlag(f['window-seconds'], 'window-seconds', d.windowSeconds)
  if (!(windowSeconds > 0)) throw new SwarmtuneError('E_USAGE', '--window-seconds must be > 0')
  const report = await runLearn({
    peers,
    minutes: numFlag(f.minutes, 'minutes', d.minutes),
    model: (f.model as string | undefined) ?? d.model,
    families,
    windowSeconds,
    tableRepeats,
    paceMs: Math.max(0, numFlag(f['pace-seconds'], 'pace-seconds', d.paceMs / 1000) * 1000),
    sampleMs: Math.max(1000, numFlag(f['sample-seconds'], 'sample-seconds', d.sampleMs / 1000) * 1000),
    evalIntervalMs: Math.max(1000, numFlag(f['eval-seconds'], 'eval-seconds', d.evalIntervalMs / 1000) * 1000),
    share,
    progress: line => { if (!json) process.stdout.write(line + '\n') }
  })
  if (typeof f.out === 'string') writeFileSync(f.out, JSON.stringify(report, null, 1) + '\n')
  if (typeof f.csv === 'string') writeFileSync(f.csv, samplesCsv(report.heldOut.samples))
  if (json) process.stdout.write(JSON.stringify(report) + '\n')
  else process.stdout.write(`${report.served.length} served (${report.unscored} unscored) on ${report.peers} peers in ${report.windows.length} windows; load ${report.loadavg1.start.toFixed(1)} → ${report.loadavg1.end.toFixed(1)}\n`)
  return 0
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`

function formatReport (r: AttackReport): string {
  const ms = (x: number | null): string => (x == null ? '-' : `${x.toFixed(1)} ms`)
  return [
    `attack ${r.attack}: ${r.honest} honest peers, ${r.byzantine} byzantine, ${r.history.tasks} tasks (${r.history.source} history)`,
    `  honest top-1    baseline ${pct(r.honestTop1.baseline)}   under attack ${pct(r.honestTop1.underAttack)}   (undefended ${pct(r.honestTop1.undefended)})`,
    `  honest regret   baseline ${r.honestRegret.baseline.toFixed(4)}   under attack ${r.honestRegret.underAttack.toFixed(4)}   (undefended ${r.honestRegret.undefended.toFixed(4)})`,
    `  attacker trust  mean weight ${r.trust.attackerWeight.toFixed(4)} vs honest ${r.trust.honestWeight.toFixed(4)} (${r.trust.distrusted} distrusted, ${r.trust.equivocators} equivocator verdicts)`,
    `  rejected ${r.rejected} ${JSON.stringify(r.rejectedByCode)}, rate-limited ${r.rateLimited}`,
    `  graylisted ${r.graylisted} attacker peer(s) by ${r.graylistedBy} honest peer(s)${r.graylistMs != null ? `, the last after ${r.graylistMs} ms` : ''}`,
    `  recommend during the attack: p50 ${ms(r.recommendP50Ms)}, p99 ${ms(r.recommendP99Ms)} (${r.recommendRequests} requests, ${r.recommendErrors} errors)`,
    `  recommend before the attack: p50 ${ms(r.recommendIdle.p50Ms)}, p99 ${ms(r.recommendIdle.p99Ms)} (${r.recommendIdle.requests} requests); honest answer time p99 ${ms(r.recommendServerP99Ms)}, honest event-loop delay p99 ${ms(r.honestLoopDelay?.p99Ms ?? null)} (max ${ms(r.honestLoopDelay?.maxMs ?? null)})`,
    `  attack messages ${r.attackMessages} (${Math.round(r.attackRate)}/s); honest records lost ${r.honestRecordsLost}; ${(r.durationMs / 1000).toFixed(0)} s`,
    ''
  ].join('\n')
}

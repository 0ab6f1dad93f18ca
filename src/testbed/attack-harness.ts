import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { apiGet, apiPost } from '../node/api-client.js'
import { buildDataset, logicalModelId, taskKeyOf, type Dataset, type HistoryBody } from '../meta/dataset.js'
import { synthHistory } from '../meta/synthetic.js'
import { createSwarmLibp2p, type SwarmLibp2p } from '../net/libp2p.js'
import { resolveLimits } from '../net/limits.js'
import { requestRecommendation } from '../net/recommend.js'
import { createClientNode } from '../net/rpc/client.js'
import { RECORDS_TOPIC } from '../net/types.js'
import { createLoopMonitor, type LoopDelay } from '../node/loop-monitor.js'
import { loopbackConfig } from './loopback.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from './processes.js'
import { createRecord, toWire, verifyWire } from '../records/sign.js'
import { synthBodies } from '../records/synthetic.js'
import type { UnsignedBody } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { packageRoot } from '../util/paths.js'
import { createRng } from '../util/random.js'
import { mean, percentile } from '../util/stats.js'
import { waitFor } from '../util/wait.js'

/**
 * The attack harness behind `swarmtune testbed --attack A` (issue #7). Honest peers are daemons
 * in separate processes on loopback holding a history; the attack runs; the harness reports for
 * the honest peers the selection quality against the history's truth before and during the
 * attack, what was rejected, who was graylisted and the recommend latency meanwhile.
 *
 * Selection quality is measured on what each honest peer would train on: its stored records
 * (fetched over its API), aggregated per cell with its own trust weights (GET /trust) exactly as
 * the meta-model's training set is built (buildDataset with weightOf), best method per task by
 * throughput. `undefended` is the same records aggregated as before issue #7 (plain median over
 * records, no trust): what the attack would have achieved.
 */
export type Attack = 'none' | 'inflate' | 'deflate' | 'sybil' | 'flood' | 'equivocate'
export const ATTACKS: readonly Attack[] = ['none', 'inflate', 'deflate', 'sybil', 'flood', 'equivocate']

export interface AttackOptions {
  attack: Attack
  /** total peers, honest + byzantine */
  peers: number
  /** byzantine peers (inflate/deflate: lying daemons; equivocate: equivocating identities; sybil/flood: one attacker node) */
  byzantine: number
  /** history bodies (JSONL); default: the structured synthetic history */
  historyFile?: string
  machines: number
  workloads: number
  /** honest peers holding each task */
  replication: number
  /** per-importer measurement noise (log-normal sigma) */
  noise: number
  seed: number
  sybils: number
  floodRate: number
  floodSeconds: number
  /** messages/s for sybil and equivocate publishing */
  publishRate: number
  progress: (line: string) => void
}

export const DEFAULT_ATTACK_OPTIONS: Omit<AttackOptions, 'attack' | 'progress'> = {
  peers: 5, byzantine: 1, machines: 2, workloads: 8, replication: 3, noise: 0.03, seed: 7,
  sybils: 200, floodRate: 5000, floodSeconds: 10, publishRate: 80
}

export interface Quality { top1: number, regret: number }

export interface AttackReport {
  attack: Attack
  peers: number
  byzantine: number
  honest: number
  history: { source: string, tasks: number, records: number }
  honestTop1: { baseline: number, underAttack: number, undefended: number }
  honestRegret: { baseline: number, underAttack: number, undefended: number }
  /** invalid messages rejected by honest peers (validation codes, summed over peers) */
  rejected: number
  rejectedByCode: Record<string, number>
  /** messages dropped by the per-peer rate limits on honest peers */
  rateLimited: number
  /** attacker peer ids graylisted by at least one honest peer */
  graylisted: number
  /** honest peers that graylisted an attacker, and the slowest of them (ms after the attack began) */
  graylistedBy: number
  graylistMs: number | null
  /** honest peers that another honest peer rate-limited, and banned (both must stay 0) */
  honestRateLimited: number
  honestBanned: number
  recommendP99Ms: number | null
  recommendP50Ms: number | null
  recommendRequests: number
  recommendErrors: number
  /** the same probe for a few seconds before the attack: the reference on this (shared) machine */
  recommendIdle: { p50Ms: number | null, p99Ms: number | null, requests: number }
  /**
   * where recommend latency comes from: the honest daemons' own answer time (request read →
   * response written, worst peer's p99), their event-loop delay during the attack (worst peer),
   * and the harness's own loop delay (the probe shares its process with the attack's set-up)
   */
  recommendServerP99Ms: number | null
  honestLoopDelay: { p99Ms: number, maxMs: number, cpuPct: number[] } | null
  harnessLoopDelay: { p99Ms: number, maxMs: number, cpuPct: number }
  /** honest records missing on some honest peer at the end (must be 0) */
  honestRecordsLost: number
  /** attacker messages sent, and per second achieved */
  attackMessages: number
  attackRate: number
  /** trust of the attacker identities as seen by honest peers (mean weight) vs honest authors' */
  trust: { attackerWeight: number, honestWeight: number, equivocators: number, distrusted: number }
  durationMs: number
}

interface TrustView { authors: Array<{ author: string, weight: number, status: string }>, unknownWeight: number, graylisted: Array<{ peer: string, since: number }>, summary: { rateLimited: number }, peers?: Array<{ peer: string, rateLimited: number, invalid: number, banned: boolean }> }
interface StatusView { peers: number, records: number, rejected: Record<string, number>, serving?: { recommend?: { answerMs?: { p99: number } } } }
interface RecordsPage { records: Array<{ author: string, seq: number, body: HistoryBody & { author: string } }>, cursor?: string }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
/** recommend probing on the quiet swarm before the attack starts */
const IDLE_PROBE_MS = 3000
/** one recommend request this often, round-robin over the honest peers */
const PROBE_INTERVAL_MS = 50

function gauss (rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
}

/** Scale a body's speed by `f` (throughputs × f, times ÷ f). */
export function scaleBody<T extends UnsignedBody | HistoryBody> (b: T, f: number): T {
  const r = b.result
  return {
    ...b,
    result: {
      ...r,
      wallMs: r.wallMs / f,
      outputTokensPerSecond: r.outputTokensPerSecond * f,
      totalTokensPerSecond: r.totalTokensPerSecond * f,
      ttftMsP50: r.ttftMsP50 / f,
      ttftMsP95: r.ttftMsP95 / f,
      tpotMs: r.tpotMs / f
    }
  }
}

/** Truth: best method per task (tasks with at least two ok cells), from the full history. */
export function truthOf (ds: Dataset): Map<string, { best: string, perf: Map<string, number> }> {
  const out = new Map<string, { best: string, perf: Map<string, number> }>()
  for (const t of ds.tasks) {
    const perf = new Map<string, number>()
    for (const c of t.cells.values()) if (!c.failed && c.throughput > 0) perf.set(c.method, c.throughput)
    if (perf.size < 2) continue
    const best = [...perf].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0]
    out.set(t.key, { best, perf })
  }
  return out
}

/** Top-1 and regret of choosing, per task, the best method of `ds` (pure). */
export function selectionQuality (ds: Dataset, truth: ReturnType<typeof truthOf>): Quality {
  const byKey = new Map(ds.tasks.map(t => [t.key, t]))
  let hits = 0
  let regret = 0
  for (const [key, tr] of truth) {
    const t = byKey.get(key)
    let choice: string | undefined
    let bestSeen = -Infinity
    for (const c of t?.cells.values() ?? []) {
      if (c.failed || !(c.throughput > bestSeen)) continue
      bestSeen = c.throughput
      choice = c.method
    }
    if (choice === tr.best) hits++
    const got = choice != null ? tr.perf.get(choice) ?? 0 : 0
    regret += 1 - got / tr.perf.get(tr.best)!
  }
  const n = Math.max(1, truth.size)
  return { top1: hits / n, regret: regret / n }
}

/** Nearest-rank latency percentile (a measured request's time); null when nothing was measured. */
function latencyPct (xs: number[], p: number): number | null {
  return xs.length > 0 ? percentile(xs, p, 'nearest-rank') : null
}

async function allRecords (api: string, modelIds: string[]): Promise<RecordsPage['records']> {
  const out: RecordsPage['records'] = []
  for (const m of modelIds) {
    let cursor: string | undefined
    do {
      const page = await apiGet<RecordsPage>(api, `/records?model=${m}&limit=1000${cursor != null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      out.push(...page.records)
      cursor = page.cursor
    } while (cursor != null)
  }
  return out
}

/** One honest peer's view: defended (trust-weighted) and undefended (plain median) quality. */
async function peerQuality (d: DaemonProcess, modelIds: string[], truth: ReturnType<typeof truthOf>): Promise<{ defended: Quality, undefended: Quality, trust: TrustView }> {
  const trust = await apiGet<TrustView>(d.info.api, '/trust')
  const weights = new Map(trust.authors.map(a => [a.author, a.weight]))
  const records = await allRecords(d.info.api, modelIds)
  const bodies = records.map(r => r.body)
  const defended = selectionQuality(buildDataset(bodies, { weightOf: a => weights.get(a) ?? trust.unknownWeight }), truth)
  const undefended = selectionQuality(buildDataset(bodies), truth)
  return { defended, undefended, trust }
}

/** JSONL of record bodies, `{ body }` entries, or signed `{ id, wire }` lines (base64 wire envelope, verified). */
async function readHistory (file: string): Promise<UnsignedBody[]> {
  const out: UnsignedBody[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    const v = JSON.parse(line) as { body?: UnsignedBody, wire?: string } & UnsignedBody
    if (typeof v.wire === 'string') out.push((await verifyWire(Buffer.from(v.wire, 'base64'))).body)
    else out.push(v.body ?? v)
  }
  return out
}

async function attackerNode (root: string, key: PrivateKey): Promise<SwarmLibp2p> {
  const node = await createSwarmLibp2p({ config: loopbackConfig({ dataDir: join(root, 'attacker') }), privateKey: key, limits: resolveLimits() })
  await node.start()
  return node
}

/** Publish `wires` at about `rate` messages/s; stops early when `stop()` says so. Returns messages sent. */
async function publishPaced (node: SwarmLibp2p, wires: Uint8Array[], rate: number, stop: () => boolean = () => false): Promise<number> {
  const tickMs = 10
  const perTick = Math.max(1, Math.round(rate * tickMs / 1000))
  const t0 = Date.now()
  let sent = 0
  while (sent < wires.length && !stop()) {
    const due = Math.min(wires.length, Math.floor((Date.now() - t0) * rate / 1000) + perTick)
    const batch: Array<Promise<unknown>> = []
    for (; sent < due; sent++) batch.push(node.services.pubsub.publish(RECORDS_TOPIC, wires[sent]).catch(() => {}))
    await Promise.all(batch)
    await sleep(tickMs)
  }
  return sent
}

/** The history, its truth, and what each honest peer imports. */
interface Scenario {
  history: UnsignedBody[]
  truth: ReturnType<typeof truthOf>
  modelIds: string[]
  taskKeys: string[]
  /** the history's bodies per task of the truth, without author fields */
  bodiesOfTask: Map<string, UnsignedBody[]>
  /** per honest peer: the bodies it imports (each task on `replication` peers, with noise) */
  shares: UnsignedBody[][]
  honestRecords: number
}

async function prepareScenario (o: AttackOptions, honestN: number, rng: () => number): Promise<Scenario> {
  const history: UnsignedBody[] = o.historyFile != null
    ? await readHistory(o.historyFile)
    : synthHistory({ machines: o.machines, models: 1, workloads: o.workloads, repeats: 1, noise: 0, failRate: 0, seed: o.seed })
  const strip = (b: UnsignedBody): UnsignedBody => {
    const { author: _a, seq: _s, v: _v, timestamp: _t, ...rest } = b as UnsignedBody & { author?: string, seq?: number, v?: number }
    return rest as UnsignedBody
  }
  const truth = truthOf(buildDataset(history))
  const modelIds = [...new Set(history.map(b => b.model.id))]
  const taskKeys = [...truth.keys()].sort()
  const bodiesOfTask = new Map<string, UnsignedBody[]>()
  for (const b of history) {
    const k = taskKeyOf(b.hardware.id, logicalModelId(b.model), b.workload.name)
    if (!truth.has(k)) continue
    let l = bodiesOfTask.get(k)
    if (l == null) bodiesOfTask.set(k, l = [])
    l.push(strip(b))
  }
  const r = Math.min(o.replication, honestN)
  const shares: UnsignedBody[][] = Array.from({ length: honestN }, () => [])
  taskKeys.forEach((k, i) => {
    for (let j = 0; j < r; j++) {
      for (const b of bodiesOfTask.get(k)!) shares[(i + j) % honestN].push(scaleBody(b, Math.exp(o.noise * gauss(rng))))
    }
  })
  const honestRecords = shares.reduce((s, x) => s + x.length, 0)
  o.progress(`history: ${o.historyFile ?? 'structured synthetic (src/meta/synthetic.ts)'}, ${truth.size} tasks, ${history.length} records; each task held by ${r} of ${honestN} honest peers`)
  return { history, truth, modelIds, taskKeys, bodiesOfTask, shares, honestRecords }
}

/** A lie (pure): the slowest method claimed 10x faster, or the best 10x slower. */
function lieOf (s: Scenario, key: string, kind: 'inflate' | 'deflate'): UnsignedBody {
  const tr = s.truth.get(key)!
  const ranked = [...tr.perf].sort((a, b) => a[1] - b[1])
  const target = kind === 'inflate' ? ranked[0][0] : ranked[ranked.length - 1][0]
  const b = s.bodiesOfTask.get(key)!.find(x => x.method.id === target)!
  return scaleBody(b, kind === 'inflate' ? 10 : 0.1)
}

/** A lying peer's import: the lie in every task, the other methods truthful. */
function liarBodies (s: Scenario, kind: 'inflate' | 'deflate', noise: number, rng: () => number): UnsignedBody[] {
  return s.taskKeys.flatMap(k => {
    const lie = lieOf(s, k, kind)
    return [lie, ...s.bodiesOfTask.get(k)!.filter(b => b.method.id !== lie.method.id).map(b => scaleBody(b, Math.exp(noise * gauss(rng))))]
  })
}

/** Honest daemons, then lying ones, into `daemons` (the caller stops them, also after a failure). */
async function startSwarm (o: AttackOptions, root: string, honestN: number, lyingN: number, daemons: DaemonProcess[]): Promise<void> {
  const env = {
    // no model training during the run: quality is measured on the training set itself
    SWARMTUNE__meta__retrainEveryRecords: '1000000000',
    SWARMTUNE__meta__firstTrainRecords: '0',
    SWARMTUNE__meta__retrainIntervalMs: '3600000',
    SWARMTUNE__vote__intervalMs: '3600000',
    SWARMTUNE__trust__evaluateIntervalMs: '1000',
    SWARMTUNE__net__sync__intervalMs: '5000'
  }
  const total = honestN + lyingN
  o.progress(`starting ${honestN} honest${lyingN > 0 ? ` + ${lyingN} lying` : ''} daemons...`)
  daemons.push(await spawnDaemon({ dataDir: join(root, 'peer1'), port: 0, apiPort: 0, env }))
  const boot = loopbackAddr(daemons[0].info)
  for (let i = 1; i < total; i++) {
    // one at a time: a 2-core machine starts them faster serially than all at once
    daemons.push(await spawnDaemon({ dataDir: join(root, `peer${i + 1}`), port: 0, apiPort: 0, bootstrap: [boot], env }))
  }
  await waitFor('the swarm to connect', async () => {
    const st = await Promise.all(daemons.map(async d => await apiGet<StatusView>(d.info.api, '/status')))
    return st.every(s => s.peers >= Math.min(2, total - 1))
  }, 60_000, 200)
}

async function recordsOn (d: DaemonProcess): Promise<number> {
  return (await apiGet<StatusView>(d.info.api, '/status')).records
}

function meanQuality (qs: Quality[]): Quality {
  return { top1: mean(qs.map(q => q.top1)), regret: mean(qs.map(q => q.regret)) }
}

/** Every honest peer imports its share; once all hold everything, the quality before the attack. */
async function importHonestHistory (o: AttackOptions, s: Scenario, honest: DaemonProcess[]): Promise<Quality> {
  await Promise.all(honest.map(async (d, i) => { await apiPost(d.info.api, '/import', JSON.stringify(s.shares[i])) }))
  await waitFor('honest history on every honest peer', async () => (await Promise.all(honest.map(recordsOn))).every(n => n >= s.honestRecords), 120_000, 250)
  await sleep(2500) // two trust evaluations
  const before = await Promise.all(honest.map(async d => await peerQuality(d, s.modelIds, s.truth)))
  const baseline = meanQuality(before.map(q => q.defended))
  o.progress(`baseline: honest top-1 ${(100 * baseline.top1).toFixed(1)} %, regret ${baseline.regret.toFixed(4)}`)
  return baseline
}

interface FloodPlan { key: PrivateKey, author: string, wires: Uint8Array[] }

async function signFlood (o: AttackOptions): Promise<FloodPlan> {
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const n = Math.round(o.floodRate * o.floodSeconds)
  o.progress(`signing ${n} flood records...`)
  const bodies = synthBodies(n, o.seed)
  const wires: Uint8Array[] = []
  for (let i = 0; i < n; i++) wires.push(toWire(await createRecord(key, author, i + 1, bodies[i])))
  return { key, author, wires }
}

interface ProbeEntry { at: number, ms: number, peer: number, error?: string }
interface ProbeResult { log: ProbeEntry[], idle: number[], during: number[], errors: number }

/**
 * The recommend latency probe, round-robin over the honest peers. Returns once the connections
 * are warm, with the probe running; finish() stops it and splits the requests at the attack's start.
 */
async function startProbe (client: Libp2p, honest: DaemonProcess[], sample: UnsignedBody): Promise<{ finish: (attackStart: number) => Promise<ProbeResult> }> {
  const request = {
    model: { id: sample.model.id, name: sample.model.name, params: sample.model.params, layers: sample.model.layers, embd: sample.model.embd, heads: sample.model.heads, kvHeads: sample.model.kvHeads, weightBits: sample.model.weightBits, ctx: sample.model.ctx },
    workload: { features: sample.workload.features },
    objective: 'throughput',
    hardware: { cores: sample.hardware.cores, threads: sample.hardware.threads, ramMiB: sample.hardware.ramMiB, gpus: sample.hardware.gpus, backend: sample.hardware.backend }
  }
  const targets = honest.map(d => multiaddr(loopbackAddr(d.info)))
  // warm: connections open before the attack, so the probe measures answering, not dialing
  for (const t of targets) await requestRecommendation(client, t, request, { timeoutMs: 10_000 }).catch(() => {})
  const probeUntil = Date.now() + 3000 + IDLE_PROBE_MS
  const log: ProbeEntry[] = []
  let probing = true
  // open loop: a request every PROBE_INTERVAL_MS whether or not the previous ones returned, so
  // a node that stalls for a second is charged for every request that second, not for one
  // (a closed-loop probe hides stalls: "coordinated omission"). A failed request (timeout)
  // counts at the time it took.
  const loop = (async () => {
    let i = 0
    const inFlight = new Set<Promise<void>>()
    while (probing || Date.now() < probeUntil) {
      const t = performance.now()
      const at = Date.now()
      const peer = i++ % targets.length
      const one: Promise<void> = requestRecommendation(client, targets[peer], request, { timeoutMs: 5000 }).then(
        () => { log.push({ at, ms: performance.now() - t, peer }) },
        (err) => { log.push({ at, ms: performance.now() - t, peer, error: (err as { code?: string }).code ?? 'E_INTERNAL' }) }
      ).finally(() => { inFlight.delete(one) })
      inFlight.add(one)
      await sleep(PROBE_INTERVAL_MS)
    }
    await Promise.all(inFlight)
  })()
  return {
    async finish (attackStart) {
      probing = false
      await loop
      const res: ProbeResult = { log, idle: [], during: [], errors: 0 }
      // only requests sent once the attack began count as "during the attack"
      for (const p of log) {
        if (p.at < attackStart) res.idle.push(p.ms)
        else {
          res.during.push(p.ms)
          if (p.error != null) res.errors++
        }
      }
      return res
    }
  }
}

/** What one run works with once the swarm is up. */
interface Run {
  o: AttackOptions
  s: Scenario
  root: string
  honest: DaemonProcess[]
  liars: DaemonProcess[]
  /** libp2p nodes of this process, stopped at the end */
  nodes: Libp2p[]
  rng: () => number
  flood?: FloodPlan
}

/** What the attack did, as the report counts it. */
interface AttackDone {
  /** when the attack began: moved to when the attacker starts sending, once it is connected */
  start: number
  attackerIds: Set<string>
  messages: number
  /** how long the attacker sent (0: not timed) */
  windowMs: number
  /** honest records imported during the attack */
  extraHonest: number
}

async function connectAttacker (run: Run, done: AttackDone, key: PrivateKey): Promise<SwarmLibp2p> {
  const node = await attackerNode(run.root, key)
  run.nodes.push(node)
  done.attackerIds.add(node.peerId.toString())
  for (const d of run.honest) await node.dial(multiaddr(loopbackAddr(d.info))).catch(() => {})
  await waitFor('attacker to see the honest peers subscribed', async () => node.services.pubsub.getSubscribers(RECORDS_TOPIC).length >= run.honest.length, 30_000, 100)
  return node
}

async function attackLies (run: Run, done: AttackDone, kind: 'inflate' | 'deflate'): Promise<void> {
  const { o, s, honest, liars } = run
  o.progress(`${liars.length} lying peers claim the ${kind === 'inflate' ? 'slowest method 10x faster' : 'best method 10x slower'} in every task`)
  for (const d of liars) done.attackerIds.add(d.info.peerId)
  const lies = liarBodies(s, kind, o.noise, run.rng)
  await Promise.all(liars.map(async d => { await apiPost(d.info.api, '/import', JSON.stringify(lies)) }))
  done.messages = lies.length * liars.length
  await waitFor('the lies on every honest peer', async () => (await Promise.all(honest.map(recordsOn))).every(n => n >= s.honestRecords + done.messages), 120_000, 250)
}

async function attackSybil (run: Run, done: AttackDone): Promise<void> {
  const { o, s, honest } = run
  const key = await generateKeyPair('Ed25519')
  const node = await connectAttacker(run, done, key)
  o.progress(`one attacker node publishes inflate lies from ${o.sybils} fresh identities`)
  const wires: Uint8Array[] = []
  for (let i = 0; i < o.sybils; i++) {
    const k = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(k).toString()
    done.attackerIds.add(author)
    let seq = 1
    for (const t of s.taskKeys) wires.push(toWire(await createRecord(k, author, seq++, lieOf(s, t, 'inflate'))))
  }
  const ts = done.start = Date.now()
  done.messages = await publishPaced(node, wires, o.publishRate)
  done.windowMs = Date.now() - ts
  // steady state: every sybil record delivered (gossip, then sync), or give up after 2 min and measure anyway
  await waitFor('sybil records to settle', async () => (await Promise.all(honest.map(recordsOn))).every(n => n >= s.honestRecords + done.messages), 120_000, 500).catch(() => { o.progress('sybil records not all delivered after 120 s; measuring anyway') })
}

async function attackEquivocate (run: Run, done: AttackDone): Promise<void> {
  const { o, s } = run
  const k = Math.max(1, o.byzantine)
  o.progress(`${k} attacker identit${k === 1 ? 'y signs' : 'ies sign'} two different lies for every seq`)
  const key = await generateKeyPair('Ed25519')
  const node = await connectAttacker(run, done, key)
  const wires: Uint8Array[] = []
  for (let i = 0; i < k; i++) {
    const kk = i === 0 ? key : await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(kk).toString()
    done.attackerIds.add(author)
    let seq = 1
    for (const t of s.taskKeys) {
      wires.push(toWire(await createRecord(kk, author, seq, lieOf(s, t, 'inflate'))))
      wires.push(toWire(await createRecord(kk, author, seq++, lieOf(s, t, 'deflate'))))
    }
  }
  const ts = done.start = Date.now()
  done.messages = await publishPaced(node, wires, o.publishRate)
  done.windowMs = Date.now() - ts
  await sleep(3000)
}

async function attackFlood (run: Run, done: AttackDone, flood: FloodPlan): Promise<void> {
  const { o, s, honest } = run
  o.progress(`flooding at ${o.floodRate} msg/s for ${o.floodSeconds} s from a separate thread; honest peers keep importing meanwhile`)
  let flooding = true
  const honestDuring = (async () => {
    // honest peers keep publishing during the flood: none of these may be lost
    let round = 0
    while (flooding) {
      await Promise.all(honest.map(async (d, i) => {
        const extra = s.bodiesOfTask.get(s.taskKeys[(round + i) % s.taskKeys.length])!.slice(0, 2).map(b => scaleBody(b, Math.exp(o.noise * gauss(run.rng))))
        await apiPost(d.info.api, '/import', JSON.stringify(extra)).catch(() => {})
      }))
      done.extraHonest += 2 * honest.length
      round++
      await sleep(1000)
    }
  })()
  const sent = await new Promise<{ sent: number, ms: number }>((resolve, reject) => {
    const here = fileURLToPath(new URL('./attacker-worker.js', import.meta.url))
    const w = new Worker(existsSync(here) ? here : join(packageRoot(), 'dist', 'src', 'testbed', 'attacker-worker.js'), {
      workerData: { key: privateKeyToProtobuf(flood.key), dataDir: join(run.root, 'flooder'), targets: honest.map(d => loopbackAddr(d.info)), wires: flood.wires, rate: o.floodRate }
    })
    w.on('message', (m: { peerId?: string, sent?: number, ms?: number, error?: string }) => {
      if (m.peerId != null) { done.attackerIds.add(m.peerId); done.start = Date.now() }
      if (m.error != null) reject(new SwarmtuneError('E_ATTACKER', m.error))
      if (m.sent != null) resolve({ sent: m.sent, ms: m.ms ?? 0 })
    })
    w.once('error', reject)
  })
  done.messages = sent.sent
  done.windowMs = sent.ms
  flooding = false
  await honestDuring
}

async function attack (run: Run, done: AttackDone): Promise<void> {
  switch (run.o.attack) {
    case 'none': await sleep(3000); break
    case 'inflate':
    case 'deflate': await attackLies(run, done, run.o.attack); break
    case 'sybil': await attackSybil(run, done); break
    case 'equivocate': await attackEquivocate(run, done); break
    case 'flood': await attackFlood(run, done, run.flood!); break
  }
}

const debugging = (): boolean => process.env.SWARMTUNE_ATTACK_DEBUG != null

/** SWARMTUNE_ATTACK_DEBUG: where the recommend latency during the attack came from. */
async function debugLatency (run: Run, attackStart: number, harnessDelay: LoopDelay, honestDelay: Array<LoopDelay | undefined>, serverP99: number[], probeLog: ProbeEntry[]): Promise<void> {
  const say = run.o.progress
  say(`debug: attack began at ${attackStart} (monotonic ${Number(process.hrtime.bigint() / 1000n) - (Date.now() - attackStart) * 1000} µs)`)
  say(`debug: harness loop delay since attack p99 ${harnessDelay.p99Ms.toFixed(1)} ms max ${harnessDelay.maxMs.toFixed(1)} ms; honest ${honestDelay.map(d => d == null ? '?' : `p99 ${d.p99Ms.toFixed(1)} max ${d.maxMs.toFixed(1)}`).join(', ')}; server answer p99 ${serverP99.map(x => x.toFixed(1)).join(', ')} ms`)
  for (const [i, d] of run.honest.entries()) {
    const st = await apiGet<{ net?: Record<string, number> }>(d.info.api, '/status').catch(() => undefined)
    say(`debug: honest ${i} net ${JSON.stringify(st?.net ?? {})}`)
  }
  for (const p of probeLog) if (p.ms > 50 || p.error != null) say(`debug: probe at ${((p.at - attackStart) / 1000).toFixed(2)} s to honest ${p.peer}: ${p.ms.toFixed(0)} ms${p.error != null ? ` ${p.error}` : ''}`)
}

/** Honest records missing on some honest peer (by per-author head), after up to 30 s for sync to repair them. */
async function lostHonestRecords (honest: DaemonProcess[], shares: UnsignedBody[][], extraHonest: number): Promise<number> {
  const expected = new Map<string, number>()
  for (let i = 0; i < honest.length; i++) expected.set(honest[i].info.peerId, shares[i].length)
  if (extraHonest > 0) {
    for (const d of honest) {
      const own = await apiGet<RecordsPage>(d.info.api, `/records?author=${d.info.peerId}&order=desc&limit=1`)
      expected.set(d.info.peerId, own.records[0]?.seq ?? 0)
    }
  }
  const missing = async (): Promise<number> => {
    let lost = 0
    for (const d of honest) {
      for (const [author, n] of expected) {
        const page = await apiGet<RecordsPage>(d.info.api, `/records?author=${author}&order=desc&limit=1`)
        const head = page.records[0]?.seq ?? 0
        lost += Math.max(0, n - head)
      }
    }
    return lost
  }
  let lost = await missing()
  if (lost > 0) {
    // anti-entropy sync repairs what gossip dropped: wait for it, then count what is still missing
    await waitFor('honest records everywhere', async () => (lost = await missing()) === 0, 30_000, 1000).catch(() => {})
  }
  return lost
}

type Tally = Pick<AttackReport, 'rejected' | 'rejectedByCode' | 'rateLimited' | 'graylisted' | 'graylistedBy' | 'graylistMs' | 'honestRateLimited' | 'honestBanned' | 'trust'>

/** The honest peers' counters and trust tables, summed over the peers. */
async function tally (run: Run, done: AttackDone, after: Array<{ trust: TrustView }>): Promise<Tally> {
  const { honest } = run
  const say = run.o.progress
  const statuses = await Promise.all(honest.map(async d => await apiGet<StatusView>(d.info.api, '/status')))
  const rejectedByCode: Record<string, number> = {}
  for (const s of statuses) for (const [c, n] of Object.entries(s.rejected ?? {})) rejectedByCode[c] = (rejectedByCode[c] ?? 0) + n
  const grayPeers = new Set<string>()
  let graylistedBy = 0
  let graylistMs: number | null = null
  let rateLimited = 0
  const attackerW: number[] = []
  const honestW: number[] = []
  let equivocators = 0
  let distrusted = 0
  const honestIds = new Set(honest.map(d => d.info.peerId))
  const honestLimited = new Set<string>()
  const honestBannedSet = new Set<string>()
  for (const [i, q] of after.entries()) {
    for (const p of q.trust.peers ?? []) {
      if (!honestIds.has(p.peer)) continue
      if (p.rateLimited > 0) honestLimited.add(p.peer)
      if (p.banned) honestBannedSet.add(p.peer)
      if (debugging()) say(`debug: honest ${i} holds honest peer ${p.peer.slice(-6)}: rate-limited ${p.rateLimited}, invalid ${p.invalid}${p.banned ? ', BANNED' : ''}`)
    }
    for (const g of q.trust.graylisted) if (debugging() && done.attackerIds.has(g.peer)) say(`debug: honest ${i} graylisted the attacker at ${((g.since - done.start) / 1000).toFixed(1)} s`)
  }
  for (const q of after) {
    rateLimited += q.trust.summary.rateLimited
    let by = false
    for (const g of q.trust.graylisted) {
      if (!done.attackerIds.has(g.peer)) continue
      grayPeers.add(g.peer)
      by = true
      graylistMs = Math.max(graylistMs ?? 0, g.since - done.start)
    }
    if (by) graylistedBy++
    for (const a of q.trust.authors) {
      if (done.attackerIds.has(a.author)) {
        attackerW.push(a.weight)
        if (a.status === 'equivocator') equivocators++
        if (a.status === 'distrusted') distrusted++
      } else if (honestIds.has(a.author) && a.status !== 'self') honestW.push(a.weight)
    }
  }
  return {
    rejected: Object.values(rejectedByCode).reduce((s, n) => s + n, 0),
    rejectedByCode,
    rateLimited,
    graylisted: grayPeers.size,
    graylistedBy,
    graylistMs,
    honestRateLimited: honestLimited.size,
    honestBanned: honestBannedSet.size,
    trust: { attackerWeight: mean(attackerW), honestWeight: mean(honestW), equivocators, distrusted }
  }
}

export async function runAttack (o: AttackOptions): Promise<AttackReport> {
  const t0 = Date.now()
  const say = o.progress
  if (!ATTACKS.includes(o.attack)) throw new SwarmtuneError('E_USAGE', `--attack must be one of ${ATTACKS.join(', ')}`)
  const lyingN = o.attack === 'inflate' || o.attack === 'deflate' ? o.byzantine : 0
  const honestN = o.attack === 'inflate' || o.attack === 'deflate' ? o.peers - o.byzantine : o.peers - (o.byzantine > 0 ? 1 : 0)
  if (honestN < 2) throw new SwarmtuneError('E_USAGE', 'need at least 2 honest peers')
  const rng = createRng(o.seed)
  const s = await prepareScenario(o, honestN, rng)

  const root = mkdtempSync(join(tmpdir(), 'swarmtune-attack-'))
  const daemons: DaemonProcess[] = []
  const nodes: Libp2p[] = []
  try {
    await startSwarm(o, root, honestN, lyingN, daemons)
    const run: Run = { o, s, root, honest: daemons.slice(0, honestN), liars: daemons.slice(honestN), nodes, rng }
    const { honest } = run
    const baseline = await importHonestHistory(o, s, honest)
    // flood records are signed before the probe starts: signing 30,000 records takes seconds of
    // this process's main thread, which would stall the probe itself (a measurement artifact)
    if (o.attack === 'flood') run.flood = await signFlood(o)

    // ---- recommend latency probe (runs during the attack)
    const client = await createClientNode()
    nodes.push(client)
    const harnessLoop = createLoopMonitor()
    harnessLoop.start()
    const probe = await startProbe(client, honest, s.history[0])
    // the same probe on the quiet swarm first: the within-run reference (this machine is shared)
    await sleep(IDLE_PROBE_MS)

    // ---- the attack
    const done: AttackDone = { start: Date.now(), attackerIds: new Set(), messages: 0, windowMs: 0, extraHonest: 0 }
    await attack(run, done)
    const probed = await probe.finish(done.start)
    const harnessDelay = harnessLoop.delay(done.start)
    harnessLoop.stop()
    const honestDelay = await Promise.all(honest.map(async d => await apiGet<LoopDelay>(d.info.api, `/eventloop?since=${done.start}`).catch(() => undefined)))
    const serverP99 = (await Promise.all(honest.map(async d => (await apiGet<StatusView>(d.info.api, '/status')).serving?.recommend?.answerMs?.p99))).filter((x): x is number => x != null)
    if (debugging()) await debugLatency(run, done.start, harnessDelay, honestDelay, serverP99, probed.log)
    const attackRate = done.windowMs > 0 ? done.messages / (done.windowMs / 1000) : 0
    if (done.windowMs > 0) say(`attack sent ${done.messages} messages in ${(done.windowMs / 1000).toFixed(1)} s (${Math.round(attackRate)}/s)`)

    // ---- no honest record lost: every honest author's records on every honest peer
    const honestRecordsLost = await lostHonestRecords(honest, s.shares, done.extraHonest)

    await sleep(2500) // two trust evaluations
    const after = await Promise.all(honest.map(async d => await peerQuality(d, s.modelIds, s.truth)))
    if (debugging()) {
      for (const q of after) {
        const st: Record<string, number> = {}
        for (const a of q.trust.authors) st[a.status] = (st[a.status] ?? 0) + 1
        say(`debug: ${q.trust.authors.length} authors ${JSON.stringify(st)}, attackers in table ${q.trust.authors.filter(a => done.attackerIds.has(a.author)).length}/${done.attackerIds.size}, unknownWeight ${q.trust.unknownWeight}`)
      }
    }
    const underAttack = meanQuality(after.map(q => q.defended))
    const undefended = meanQuality(after.map(q => q.undefended))
    const counted = await tally(run, done, after)
    say(`under attack: honest top-1 ${(100 * underAttack.top1).toFixed(1)} % (undefended ${(100 * undefended.top1).toFixed(1)} %), regret ${underAttack.regret.toFixed(4)}`)
    return {
      attack: o.attack,
      peers: o.peers,
      byzantine: o.byzantine,
      honest: honestN,
      history: { source: o.historyFile ?? 'synthetic', tasks: s.truth.size, records: s.history.length },
      honestTop1: { baseline: baseline.top1, underAttack: underAttack.top1, undefended: undefended.top1 },
      honestRegret: { baseline: baseline.regret, underAttack: underAttack.regret, undefended: undefended.regret },
      rejected: counted.rejected,
      rejectedByCode: counted.rejectedByCode,
      rateLimited: counted.rateLimited,
      graylisted: counted.graylisted,
      graylistedBy: counted.graylistedBy,
      graylistMs: counted.graylistMs,
      honestRateLimited: counted.honestRateLimited,
      honestBanned: counted.honestBanned,
      recommendP99Ms: latencyPct(probed.during, 99),
      recommendP50Ms: latencyPct(probed.during, 50),
      recommendRequests: probed.during.length,
      recommendErrors: probed.errors,
      recommendIdle: { p50Ms: latencyPct(probed.idle, 50), p99Ms: latencyPct(probed.idle, 99), requests: probed.idle.length },
      recommendServerP99Ms: serverP99.length > 0 ? Math.max(...serverP99) : null,
      honestLoopDelay: honestDelay.every(d => d != null) && honestDelay.length > 0 ? { p99Ms: Math.max(...honestDelay.map(d => d!.p99Ms)), maxMs: Math.max(...honestDelay.map(d => d!.maxMs)), cpuPct: honestDelay.map(d => Math.round(d!.cpuPct)) } : null,
      // cpuPct of the harness process includes the attacker's thread
      harnessLoopDelay: { p99Ms: harnessDelay.p99Ms, maxMs: harnessDelay.maxMs, cpuPct: Math.round(harnessDelay.cpuPct) },
      honestRecordsLost,
      attackMessages: done.messages,
      attackRate,
      trust: counted.trust,
      durationMs: Date.now() - t0
    }
  } finally {
    await Promise.all(nodes.map(async n => { try { await n.stop() } catch {} }))
    await Promise.all(daemons.map(async d => { await d.stop() }))
    rmSync(root, { recursive: true, force: true })
  }
}

import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { apiGet, apiPost } from '../../src/node/api-client.js'
import { parsePrometheus } from '../helpers/prometheus.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { loadConfig } from '../../src/node/config.js'
import { createSwarmLibp2p, type SwarmLibp2p } from '../../src/net/libp2p.js'
import { resolveLimits } from '../../src/net/limits.js'
import { INFER_PROTOCOL, RECOMMEND_PROTOCOL, VOTES_TOPIC } from '../../src/net/types.js'
import { requestRecommendation, type RecommendResponse } from '../../src/net/recommend.js'
import { createClientNode } from '../../src/net/rpc/client.js'
import { lengthPrefixed } from '../../src/net/rpc/framing.js'
import { requestInference } from '../../src/net/infer.js'
import { signVote, voteToWire, VOTE_DOMAIN } from '../../src/vote/codec.js'
import { withDomain } from '../../src/records/sign.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * Issue #6 end to end: real daemons as separate processes on 127.0.0.1, the real engine with the
 * embedded tiny model, real LevelDB. A and B benchmark (standalone `swarmtune bench` into their
 * data dirs, then start); C starts cold, bootstrapped to both. Build first: `npx tsc -p .`.
 */
const run = promisify(execFile)
const env = {
  SWARMTUNE__engine__defaultModel: 'tiny',
  SWARMTUNE__vote__intervalMs: '1000',
  SWARMTUNE__meta__retrainEveryRecords: '4',
  SWARMTUNE__meta__retrainIntervalMs: '2000',
  SWARMTUNE__meta__trees: '10',
  SWARMTUNE__net__sync__intervalMs: '2000'
}
const METHODS = 'baseline,prefix-cache,batch-4,chunked-prefill'

interface Status { peerId: string, peers: number, records: number, rejected: Record<string, number>, snapshot: unknown }
interface Committee {
  self: string
  classes: Array<{ key: string, voters: number, ranking: Array<{ method: string, score: number }>, ballots: Array<{ author: string, weight: number }> }>
  weights: Array<{ author: string, weight: number }>
}
interface Page { records: Array<{ id: string, author: string, source: string, body: { workload: { features: Record<string, number> }, model: { id: string } } }>, cursor?: string }

let root: string
const children: DaemonProcess[] = []
let a: DaemonProcess
let b: DaemonProcess
let c: DaemonProcess

async function bench (dir: string): Promise<void> {
  await run(process.execPath, [cliPath(), 'bench', '--data-dir', dir, '--model', 'tiny', '--methods', METHODS,
    '--workloads', 'chat,docqa,classify', '--scale', 'tiny', '--repeats', '1', '--json'], { maxBuffer: 16 * 2 ** 20, timeout: 240_000 })
}

async function start (name: string, bootstrap: DaemonProcess[]): Promise<DaemonProcess> {
  const d = await spawnDaemon({ dataDir: join(root, name), port: 0, apiPort: 0, bootstrap: bootstrap.map(x => loopbackAddr(x.info)), env, timeoutMs: 60_000 })
  children.push(d)
  return d
}

const status = async (d: DaemonProcess): Promise<Status> => await apiGet<Status>(d.info.api, '/status')

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-rec-'))
  await Promise.all([bench(join(root, 'a')), bench(join(root, 'b'))])
  a = await start('a', [])
  b = await start('b', [a])
  c = await start('c', [a, b])
  await waitFor('A and B to train a meta-model on both histories', async () => {
    const [sa, sb] = await Promise.all([status(a), status(b)])
    return sa.records >= 24 && sb.records >= 24 && sa.snapshot != null && sb.snapshot != null
  }, 120_000, 250)
}, 420_000)

afterAll(async () => {
  await Promise.all(children.map(async d => { await d.stop(5000) }))
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('a cold peer and the committee', () => {
  let committee: Committee

  it('C tallies the votes of A and B, and its own selector picks the committee\'s top method', async () => {
    committee = await waitFor('C to hold ballots from A and B', async () => {
      const v = await apiGet<Committee>(c.info.api, '/committee')
      const both = v.classes.filter(cl => cl.key.endsWith('|o=throughput') && cl.ballots.some(x => x.author === a.info.peerId) && cl.ballots.some(x => x.author === b.info.peerId))
      return both.length > 0 ? v : undefined
    }, 90_000, 250)
    // equal starting weights: no author has been scored by C yet (reputation x trust, issue #7)
    const ws = new Set(committee.weights.filter(w => w.author !== c.info.peerId).map(w => w.weight))
    expect(ws.size).toBe(1)
    expect([...ws][0]).toBeGreaterThan(0)
    // a task in a voted class: the workload features of one of A's benchmark records
    const page = await apiGet<Page>(a.info.api, `/records?author=${a.info.peerId}&limit=100`)
    let checked = 0
    for (const r of page.records) {
      const res = await apiPost<RecommendResponse>(c.info.api, '/recommend', JSON.stringify({ model: r.body.model.id, workload: { features: r.body.workload.features } }))
      const cl = committee.classes.find(x => x.key === res.taskClass)
      if (cl == null || cl.voters < 2) continue
      expect(res.coldStart).toBe(true)
      expect(res.source).toBe('committee')
      // the tally may have moved on since we read it: compare with the current one
      const now = (await apiGet<Committee>(c.info.api, `/committee?key=${encodeURIComponent(res.taskClass)}`)).classes[0]
      expect(res.ranking[0].method).toBe(now.ranking[0].method)
      expect(METHODS.split(',')).toContain(res.ranking[0].method)
      checked++
    }
    expect(checked).toBeGreaterThan(0)
  })

  it('`swarmtune recommend` against A returns a ranked answer with its evidence', async () => {
    const page = await apiGet<Page>(a.info.api, `/records?author=${a.info.peerId}&limit=1`)
    const task = join(root, 'task.json')
    writeFileSync(task, JSON.stringify({ model: 'tiny', workload: { features: page.records[0].body.workload.features }, objective: 'throughput' }))
    const { stdout } = await run(process.execPath, [cliPath(), 'recommend', '--peer', loopbackAddr(a.info), '--task', task, '--json', '--committee'])
    const res = JSON.parse(stdout) as RecommendResponse & { committee: Committee }
    expect(res.ranking.length).toBeGreaterThanOrEqual(4)
    for (const r of res.ranking) expect(r).toEqual(expect.objectContaining({ method: expect.any(String), predicted: expect.any(Object), uncertainty: expect.any(Number) }))
    expect(res.evidence.records).toBeGreaterThan(0)
    expect(res.evidence.authors).toBe(2) // A's and B's benchmarks
    expect(res.evidence.snapshot).toMatch(/^[0-9a-f]{16}$/)
    expect(typeof res.coldStart).toBe('boolean')
    expect(res.committee.weights.length).toBeGreaterThan(0)
    // the human form too
    const human = await run(process.execPath, [cliPath(), 'recommend', '--peer', loopbackAddr(a.info), '--task', task])
    expect(human.stdout).toContain(res.ranking[0].method)
  })
})

describe('serving on the cold peer', () => {
  it('/v1/chat/completions answers with text from the real engine and the method it used', async () => {
    const reply = await apiPost<any>(c.info.api, '/v1/chat/completions', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Say something about peers.' }], max_tokens: 8 }))
    expect(reply.object).toBe('chat.completion')
    expect(typeof reply.choices[0].message.content).toBe('string')
    expect(reply.usage.completion_tokens).toBeGreaterThan(0)
    expect(reply.choices[0].message.content.length).toBeGreaterThan(0)
    expect(reply.swarmtune.method).toMatch(/^[a-z0-9]/)
    expect(reply.swarmtune.metrics.outputTokens).toBe(reply.usage.completion_tokens)
    // streaming: SSE chunks, then [DONE]
    const res = await fetch(`${c.info.api}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true }), headers: { 'content-type': 'application/json' } })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const events = (await res.text()).split('\n\n').filter(x => x.startsWith('data: ')).map(x => x.slice(6))
    expect(events.at(-1)).toBe('[DONE]')
    const chunks = events.slice(0, -1).map(e => JSON.parse(e))
    expect(chunks[0].choices[0].delta.role).toBe('assistant')
    expect(chunks.at(-1).swarmtune.method).toMatch(/^[a-z0-9]/)
    // the served batches on C's /metrics: outcome, tokens, time to first token, chosen method
    const families = parsePrometheus(await (await fetch(`${c.info.api}/metrics`)).text())
    const samples = (name: string) => families.get(name)?.samples ?? []
    expect(samples('swarmtune_serving_batches_total').find(x => x.labels.outcome === 'ok')?.value).toBeGreaterThanOrEqual(2)
    expect(samples('swarmtune_serving_output_tokens_total')[0]?.value).toBeGreaterThanOrEqual(reply.usage.completion_tokens)
    expect(samples('swarmtune_serving_time_to_first_token_seconds').find(x => x.name.endsWith('_count'))?.value).toBeGreaterThanOrEqual(2)
    expect(samples('swarmtune_serving_method_chosen_total').some(x => x.labels.method === reply.swarmtune.method)).toBe(true)
    expect(samples('swarmtune_api_requests_total').find(x => x.labels.route === '/v1/chat/completions' && x.labels.status === '200')?.value).toBe(2)
  })

  it('C\'s source:serving records reach A and B', async () => {
    const client = await createClientNode()
    try {
      const r = await requestInference(client, multiaddr(loopbackAddr(c.info)), { prompts: ['The swarm', 'The swarm learns'], maxTokens: 4 })
      expect(r.outputs).toHaveLength(2)
      expect(r.metrics.outputTokens).toBeGreaterThan(0)
    } finally {
      await client.stop()
    }
    for (const d of [a, b]) {
      await waitFor(`C's serving records on ${d === a ? 'A' : 'B'}`, async () => {
        const page = await apiGet<Page>(d.info.api, `/records?author=${c.info.peerId}&source=serving&limit=100`)
        return page.records.length >= 3
      }, 60_000, 250)
    }
  })
})

describe('hostile input', () => {
  let evil: SwarmLibp2p | undefined
  afterAll(async () => { await evil?.stop() })

  it('a forged or garbage vote is rejected and counted; the peer keeps tallying', async () => {
    const key = await generateKeyPair('Ed25519')
    const config = loadConfig({ env: {}, overrides: { dataDir: join(root, 'evil'), net: { listen: ['/ip4/127.0.0.1/tcp/0'], localTestbed: true } } })
    evil = await createSwarmLibp2p({ config, privateKey: key, limits: resolveLimits() })
    await evil.start()
    evil.services.pubsub.subscribe(VOTES_TOPIC)
    await evil.dial(multiaddr(loopbackAddr(c.info)))
    await waitFor('evil to see C on the votes topic', async () => evil!.services.pubsub.getSubscribers(VOTES_TOPIC).some(p => p.toString() === c.info.peerId), 30_000, 100)
    const before = (await status(c)).rejected
    // signed by evil's key while claiming to be A
    const forged = await signVote(key, { v: 1, author: a.info.peerId, seq: 1_000_000, timestamp: Date.now(), snapshot: 'x', classes: [{ key: 'v1|m=0000000000000000|w=s-n-1|b=cpu|o=throughput', ranking: [{ method: 'all-on', score: 99 }], evidence: { records: 1, authors: 1 } }] })
    await evil.services.pubsub.publish(VOTES_TOPIC, voteToWire(forged))
    // correctly signed, but the body is not JSON
    const junk = new TextEncoder().encode('not a vote')
    const sig = await key.sign(withDomain(VOTE_DOMAIN, junk))
    const wire = new Uint8Array(65 + junk.length); wire[0] = 1; wire.set(sig, 1); wire.set(junk, 65)
    await evil.services.pubsub.publish(VOTES_TOPIC, wire)
    await waitFor('C to count both', async () => {
      const r = (await status(c)).rejected
      return (r.E_VOTE_SIGNATURE ?? 0) > (before.E_VOTE_SIGNATURE ?? 0) && (r.E_VOTE_MALFORMED ?? 0) > (before.E_VOTE_MALFORMED ?? 0)
    }, 30_000, 100)
    const v = await apiGet<Committee>(c.info.api, '/committee')
    for (const cl of v.classes) for (const bal of cl.ballots) expect(bal.author).not.toBe(peerIdFromPrivateKey(key).toString())
    expect(v.classes.flatMap(cl => cl.ballots.filter(x => x.author === a.info.peerId))).not.toHaveLength(0)
  })

  it('oversize requests and garbage bytes on recommend and infer are refused with codes, counted, and C keeps answering', async () => {
    const client = await createClientNode()
    const addr = multiaddr(loopbackAddr(c.info))
    try {
      for (const [proto, name, limit] of [[RECOMMEND_PROTOCOL, 'recommend', 64 * 1024], [INFER_PROTOCOL, 'infer', 256 * 1024]] as const) {
        const before = (await status(c)).rejected
        // oversize: a valid length prefix announcing more than the limit
        const s1 = await client.dialProtocol(addr, proto)
        const lp1 = lpStream(s1)
        await lp1.write(new Uint8Array(limit + 10).fill(0x20))
        expect(JSON.parse(new TextDecoder().decode((await lp1.read()).subarray())).error.code).toBe('E_REQ_OVERSIZE')
        // garbage: a frame of bytes that are not JSON
        const s2 = await client.dialProtocol(addr, proto)
        s2.send(lengthPrefixed(Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff])))
        const lp2 = lpStream(s2)
        expect(JSON.parse(new TextDecoder().decode((await lp2.read()).subarray())).error.code).toBe('E_REQ_MALFORMED')
        const after = (await status(c)).rejected
        expect(after[`${name}:E_REQ_OVERSIZE`] ?? 0).toBe((before[`${name}:E_REQ_OVERSIZE`] ?? 0) + 1)
        expect(after[`${name}:E_REQ_MALFORMED`] ?? 0).toBe((before[`${name}:E_REQ_MALFORMED`] ?? 0) + 1)
      }
      // still answering, over libp2p and HTTP
      const res = await requestRecommendation(client, addr, { model: 'tiny', prompts: ['hello there'] })
      expect(res.ranking.length).toBeGreaterThan(0)
      expect((await status(c)).peers).toBeGreaterThanOrEqual(2)
      expect(c.proc.exitCode).toBeNull()
    } finally {
      await client.stop()
    }
  })
})

import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { createRecordStore } from '../../../src/store/record-store.js'
import { createApi } from '../../../src/node/api.js'
import { loadConfig } from '../../../src/node/config.js'
import { Counters } from '../../../src/util/counters.js'
import { createRecord, synthBodies, type SignedRecord } from '../../../src/records/index.js'
import { VOTES_TOPIC } from '../../../src/net/types.js'
import { createVoteService, type VoteComponents } from '../../../src/vote/service.js'
import { signVote, voteToWire, classBase, classKeyOf, type VoteBody } from '../../../src/vote/index.js'

/*
 * The vote service on a real LevelDB store, driven through its gossip validator (the function
 * gossipsub calls) and record events; the real gossip path is in
 * test/integration/recommend-vote-serving.test.ts.
 */
const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

async function identity () {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

async function setup (dir: string, self: Awaited<ReturnType<typeof identity>>) {
  const config = loadConfig({ env: {}, overrides: { dataDir: dir } })
  const store = createRecordStore({ path: join(dir, 'store'), maxRecords: 100_000, ownAuthor: self.id })
  await store.start()
  const validators = new Map<string, (peer: unknown, msg: { data: Uint8Array }) => Promise<TopicValidatorResult>>()
  const pubsub = { topicValidators: validators, subscribe () {}, unsubscribe () {}, publish: async () => ({ recipients: [] }) }
  const rejections = new Counters()
  const events = new EventTarget()
  const api = createApi({ host: '127.0.0.1', port: 0 })
  const components = {
    privateKey: self.key, peerId: peerIdFromString(self.id), store, rejections, events, api,
    network: { libp2p: { services: { pubsub } } }
  } as unknown as VoteComponents
  const svc = createVoteService({ config: config.vote, coldOwnRecords: 2 }, components)
  await svc.start()
  const validate = async (data: Uint8Array) => await validators.get(VOTES_TOPIC)!(peerIdFromString(self.id), { data })
  return { svc, store, rejections, events, validate, stop: async () => { await svc.stop(); await store.stop() } }
}

describe('vote service', () => {
  it('accepts, rejects and ignores votes; scores voters against own measurements; persists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-vote-')); dirs.push(dir)
    const self = await identity()
    const honest = await identity()
    const liar = await identity()
    let node = await setup(dir, self)
    const now = Date.now()
    // own measurements (this node's benchmark records) in one class: fast is 2x slow
    const template = synthBodies(1, 9, now)[0]
    const base = classBase(template.model.id, template.workload.features, template.hardware.backend)
    const key = classKeyOf(base, 'throughput')
    const vote = (author: string, seq: number, order: string[], t = now - 60_000): VoteBody =>
      ({ v: 1, author, seq, timestamp: t, snapshot: 's', classes: [{ key, ranking: order.map(m => ({ method: m, score: 1 })), evidence: { records: 3, authors: 1 } }] })

    expect(await node.validate(voteToWire(await signVote(honest.key, vote(honest.id, 1, ['fast', 'slow']))))).toBe(TopicValidatorResult.Accept)
    expect(await node.validate(voteToWire(await signVote(liar.key, vote(liar.id, 1, ['slow', 'fast']))))).toBe(TopicValidatorResult.Accept)
    // replay and older seq: ignored; forged (liar's key, honest's name) and garbage: rejected and counted
    expect(await node.validate(voteToWire(await signVote(honest.key, vote(honest.id, 1, ['fast', 'slow']))))).toBe(TopicValidatorResult.Ignore)
    expect(await node.validate(voteToWire(await signVote(liar.key, vote(honest.id, 9, ['slow', 'fast']))))).toBe(TopicValidatorResult.Reject)
    expect(await node.validate(Uint8Array.from([1, 2, 3]))).toBe(TopicValidatorResult.Reject)
    expect(node.rejections.get('E_VOTE_SIGNATURE')).toBe(1)
    expect(node.rejections.get('E_VOTE_MALFORMED')).toBe(1)

    // equal weights, opposite ballots: a tie, broken by method id
    let c = node.svc.committee(key)!
    expect(c.voters).toBe(2)
    expect(c.ranking.map(e => e.score)).toEqual([0.75, 0.75])
    expect(node.svc.isCold(key)).toBe(true)

    const own: SignedRecord[] = []
    for (const [i, [method, tps]] of ([['fast', 200], ['slow', 100], ['fast', 210], ['slow', 90]] as const).entries()) {
      const body = { ...template, timestamp: now, source: 'benchmark' as const, method: { id: method, knobs: {} }, result: { ...template.result, ok: true, totalTokensPerSecond: tps } }
      own.push(await createRecord(self.key, self.id, i + 1, body, now))
    }
    for (const r of own) {
      await node.store.put(r, { own: true })
      node.events.dispatchEvent(new CustomEvent('record', { detail: { record: r, via: 'own' } }))
    }
    const updates = node.svc.flushReputation()
    expect(updates.map(u => u.author).sort()).toEqual([honest.id, liar.id].sort())
    const w = Object.fromEntries(node.svc.weights().map(x => [x.author, x.weight]))
    expect(w[honest.id]).toBeGreaterThan(1)
    expect(w[liar.id]).toBeLessThan(1)
    c = node.svc.committee(key)!
    expect(c.ranking[0].method).toBe('fast')
    expect(node.svc.isCold(key)).toBe(false)
    // nothing new measured: scoring again changes nothing
    expect(node.svc.flushReputation()).toHaveLength(0)
    // a newer ballot cast after the measurement is not scored against it
    expect(await node.validate(voteToWire(await signVote(liar.key, vote(liar.id, 2, ['slow', 'fast'], now + 1000))))).toBe(TopicValidatorResult.Accept)
    const extra = await createRecord(self.key, self.id, 5, { ...template, timestamp: now, source: 'serving', method: { id: 'slow', knobs: {} }, result: { ...template.result, ok: true, totalTokensPerSecond: 95 } }, now)
    await node.store.put(extra, { own: true })
    node.events.dispatchEvent(new CustomEvent('record', { detail: { record: extra, via: 'own' } }))
    expect(node.svc.flushReputation().map(u => u.author)).toEqual([honest.id])

    // ballots and weights survive a restart
    await node.stop()
    node = await setup(dir, self)
    const again = Object.fromEntries(node.svc.weights().map(x => [x.author, x.weight]))
    expect(again[honest.id]).toBeGreaterThan(w[honest.id])
    expect(again[liar.id]).toBeCloseTo(w[liar.id])
    expect(node.svc.committee(key)?.ranking[0].method).toBe('fast')
    expect(node.svc.view(key).classes[0].ballots).toHaveLength(2)
    await node.stop()
  })
})

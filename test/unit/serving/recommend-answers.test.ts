import { describe, it, expect, beforeAll } from 'vitest'
import { knobRecord, loadMethods } from '../../../src/engine/methods.js'
import { logicalModelId } from '../../../src/meta/dataset.js'
import { load, toJSON, train, type MetaModel } from '../../../src/meta/selector.js'
import { synthHistory, synthMachines, synthModels, synthWorkloads } from '../../../src/meta/synthetic.js'
import type { RecommendRequest, RecommendResponse } from '../../../src/net/recommend.js'
import { stableId } from '../../../src/records/stable-id.js'
import { createMethodDecider, createRecommender, type Recommender } from '../../../src/serving/decision.js'
import { createRng } from '../../../src/util/random.js'
import type { VoteService } from '../../../src/vote/service.js'

/**
 * Issue #19 item 3: the recommend path remembers what does not change between requests (the
 * snapshot's safe-default policy, its fixed-rule answers per candidate set, the pairwise priors
 * per candidate set, logical model ids, and the forest's binned rows). These caches must not
 * change a single answer: a warm recommender, asked a stream of all-new tasks (and each again),
 * answers exactly as a cold one built on a fresh copy of the same snapshot for every query.
 */

const catalog = loadMethods()
const machines = synthMachines(3, 7)
const models = synthModels(2, 7)
const workloads = synthWorkloads(8, 7)

/** The committee side of a peer with no committee: only the model index answers. */
function votesOf (): VoteService {
  const byKey = new Map(models.flatMap(m => [[m.id, m], [m.name, m]] as const))
  return {
    index: { model: (k: string) => byKey.get(k), evidence: () => ({ records: 0, authors: 0 }) },
    ownEvidence: () => ({ records: 0, methods: 0 }),
    version: () => 0,
    committee: () => undefined
  } as unknown as VoteService
}

function recommenderOn (model: MetaModel): Recommender {
  const votes = votesOf()
  const decide = createMethodDecider({
    explorationRate: 0,
    pricePerHour: 0.1,
    rng: createRng(1),
    methodKnobs: Object.fromEntries(catalog.map(m => [m.id, knobRecord(m.knobs)])),
    meta: () => model,
    votes: () => votes
  })
  return createRecommender({
    decide,
    catalogIds: () => catalog.map(m => m.id),
    meta: () => model,
    votes: () => votes,
    modelSpec: async () => { throw new Error('not used: every model is in the index') },
    tokenizerFor: () => undefined,
    hardwareForAdvice: () => machines[0]
  })
}

/** bench:recommend's all-new stream (every task ≥ 3.5 % from the others in some feature), with both objectives, a hardware hint, a method subset and a budget mixed in. */
function queries (n: number): RecommendRequest[] {
  return Array.from({ length: n }, (_, k) => {
    const w = workloads[k % 8].features
    const features = { ...w, promptTokensMean: w.promptTokensMean * 1.035 ** (k % 10), outputTokensMean: w.outputTokensMean * 1.035 ** Math.floor(k / 10) }
    const req: RecommendRequest = { model: { id: models[k % 2].id }, features, objective: k % 4 === 0 ? 'latency' : k % 7 === 0 ? 'cost' : 'throughput' }
    if (k % 5 === 0) req.hardware = { ...machines[1 + (k % 2)], gpus: machines[1 + (k % 2)].gpus ?? [] }
    if (k % 6 === 0) req.methods = catalog.slice(0, 5).map(m => m.id)
    if (k % 9 === 0) req.budget = 1e-6
    return req
  })
}

describe('recommend answers with the caches warm equal the uncached answers', () => {
  let model: MetaModel
  let snapshot: unknown
  beforeAll(async () => {
    model = await train(synthHistory({ machines: 3, models: 2, workloads: 8, repeats: 1, seed: 7 }), { backend: 'histogram', nTrees: 20, seed: 3 })
    snapshot = JSON.parse(JSON.stringify(toJSON(model)))
  }, 60_000)

  /** A recommender on a fresh copy of the snapshot: no policy, prior or forest memo shared with any other. */
  async function cold (q: RecommendRequest): Promise<RecommendResponse> {
    return await recommenderOn(await load(JSON.parse(JSON.stringify(snapshot)))).recommend(q)
  }

  it('a stream of all-new tasks, then the same tasks again, answers as a cold recommender per query', async () => {
    expect(model.safeDefault).toBeDefined()
    // each task three times: all candidates, and two candidate sets of the same size that differ
    // in one method (without the top choice; without the second): a cache keyed too coarsely
    // (by shape alone, by the set's size) answers one of them with another's numbers or choice
    const qs: RecommendRequest[] = []
    const expected: RecommendResponse[] = []
    for (const q of queries(24)) {
      const full = await cold(q)
      const ids = full.ranking.map(r => r.method)
      const variants = [q, { ...q, methods: ids.slice(1) }, { ...q, methods: [ids[0], ...ids.slice(2)] }]
      for (const v of variants) {
        qs.push(v)
        expected.push(v === q ? full : await cold(v))
      }
    }
    const warm = recommenderOn(model)
    const first: RecommendResponse[] = []
    for (const q of qs) first.push(await warm.recommend(q))
    const again: RecommendResponse[] = []
    for (const q of [...qs].reverse()) again.push(await warm.recommend(q))
    again.reverse()
    expect(warm.counts().recommendCacheHits).toBe(qs.length)
    const sources = new Set<string>()
    for (const [i, e] of expected.entries()) {
      expect(first[i]).toEqual(e)
      expect(again[i]).toEqual(e)
      sources.add(e.source)
    }
    // the stream went through the safe-default gate and the plain ranking both
    expect([...sources].sort()).toEqual(['meta', 'safe-default'])
  }, 120_000)

  it('pairwise priors per candidate set are the per-method priors', () => {
    const prior = model.prior
    expect(prior).not.toBeNull()
    const ids = catalog.map(m => m.id)
    // sets of one size that differ in members or order, and another size
    const sets = [ids, ids.slice(1), [ids[0], ...ids.slice(2)], ids.slice(0, -1).reverse(), ids.slice(0, 4), [...model.methods].reverse()]
    for (const s of sets) {
      expect(prior!.priors(s)).toEqual(s.map(m => prior!.prior(m, s)))
      // asked again (remembered): the same numbers
      expect(prior!.priors(s)).toEqual(s.map(m => prior!.prior(m, s)))
    }
  })

  it('logical model ids are the hash of the same fields, remembered or not', () => {
    for (const m of [...models, { ...models[0], ctx: undefined as unknown as number }, { ...models[1], name: 'x"y' }]) {
      const { name, architecture, params, layers, embd, heads, kvHeads, ff, vocab, ctx } = m
      const expected = stableId({ name, architecture, params, layers, embd, heads, kvHeads, ff, vocab, ctx })
      expect(logicalModelId(m)).toBe(expected)
      expect(logicalModelId(m)).toBe(expected)
    }
    // what stableId cannot encode is still refused, not answered from a remembered id
    expect(() => logicalModelId({ ...models[0], params: NaN })).toThrow()
  })
})

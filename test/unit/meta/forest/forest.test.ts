import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
// ml-random-forest's types are broken in places; skipLibCheck covers them
import { RandomForestRegression } from 'ml-random-forest'
import { errorCode } from '../../../../src/util/errors.js'
import { createRng } from '../../../../src/util/random.js'
import { packageRoot } from '../../../../src/util/paths.js'
import {
  binMatrix, HistogramForest, histogramBackend, quantileEdges, trainHistogramForest, workerScript
} from '../../../../src/meta/forest/index.js'
import { friedman1, metaLike, r2 } from '../../../../src/meta/forest/datasets.js'

function meanPredictorR2 (trainY: number[], testY: number[]): number {
  const m = trainY.reduce((a, b) => a + b, 0) / trainY.length
  return r2(testY, testY.map(() => m))
}

async function catchCode (fn: () => unknown): Promise<string> {
  try { await fn() } catch (err) { return errorCode(err) }
  return 'no error'
}

describe('binning', () => {
  it('gives each distinct value its own bin when there are few, and caps the bin count', () => {
    expect(quantileEdges(Float64Array.from([1, 1, 2, 3, 3, 3]), 255)).toEqual([1.5, 2.5])
    const many = Float64Array.from({ length: 10_000 }, (_, i) => i)
    const edges = quantileEdges(many, 255)
    expect(edges.length).toBe(254)
    // roughly equal counts per bin
    expect(edges[0]).toBeGreaterThan(30)
    expect(edges[0]).toBeLessThan(50)
  })

  it('keeps a heavy value in one bin of its own and spreads the rest evenly', () => {
    const rng = createRng(8)
    const vals = Float64Array.from({ length: 10_000 }, (_, i) => (i < 4000 ? 0 : 1 + rng())).sort()
    const edges = quantileEdges(vals, 255)
    expect(edges.length).toBe(254)
    // the 4000 zeros are not split: the first cut sits between 0 and the smallest other value
    expect(edges[0]).toBeGreaterThan(0)
    expect(edges[0]).toBeLessThan(vals[4000])
    // the other 6000 values share the remaining 254 bins, about 24 each
    const counts = new Array<number>(255).fill(0)
    for (const v of vals) { let b = 0; while (b < edges.length && v > edges[b]) b++; counts[b]++ }
    expect(counts[0]).toBe(4000)
    for (let b = 1; b < 255; b++) { expect(counts[b]).toBeGreaterThan(15); expect(counts[b]).toBeLessThan(35) }
  })

  it('puts x in bin b exactly when edges say so, and NaN in its own last bin', () => {
    const rng = createRng(3)
    const X = Array.from({ length: 2000 }, (_, i) => [i % 97 === 0 ? NaN : rng() * 10, Math.floor(rng() * 5)])
    const b = binMatrix(X, 2)
    expect(b.nBins[1]).toBe(5)
    expect(b.nBins[0]).toBe(256)
    for (let f = 0; f < 2; f++) {
      const off = b.edgeOffset[f]
      for (let i = 0; i < X.length; i++) {
        const bin = b.bins[i * b.stride + f]
        const v = X[i][f]
        if (Number.isNaN(v)) { expect(bin).toBe(b.nBins[f] - 1); continue }
        if (bin > 0) expect(v).toBeGreaterThan(b.edges[off + bin - 1])
        if (bin < b.nBins[f] - 1) expect(v).toBeLessThanOrEqual(b.edges[off + bin])
      }
    }
  })
})

describe('histogram forest', () => {
  const train = friedman1(600, 12, 1)
  const test = friedman1(400, 12, 2)

  it('is deterministic for a seed, and the seed matters', async () => {
    const a = await histogramBackend.train(train.X, train.y, { nTrees: 30, seed: 7 })
    const b = await histogramBackend.train(train.X, train.y, { nTrees: 30, seed: 7 })
    const c = await histogramBackend.train(train.X, train.y, { nTrees: 30, seed: 8 })
    const pa = a.predict(test.X)
    expect(b.predict(test.X)).toEqual(pa)
    expect(c.predict(test.X).mean).not.toEqual(pa.mean)
    expect(JSON.stringify(b.toJSON())).toBe(JSON.stringify(a.toJSON()))
  })

  it('beats the mean predictor on a nonlinear function (held-out R2)', async () => {
    const f = await histogramBackend.train(train.X, train.y, { nTrees: 50, seed: 1 })
    const score = r2(test.y, f.predict(test.X).mean)
    expect(meanPredictorR2(train.y, test.y)).toBeLessThan(0)
    expect(score).toBeGreaterThan(0.6)
  })

  it('reproduces the training targets with one unbagged tree and leaves of one (bins = thresholds)', async () => {
    const rng = createRng(5)
    // <= 255 distinct values per feature, so binning loses nothing
    const X = Array.from({ length: 300 }, () => [Math.floor(rng() * 200), Math.floor(rng() * 50) / 7, rng() < 0.1 ? NaN : Math.floor(rng() * 9)])
    const y = X.map((x, i) => Math.sin(x[0] / 9) * 3 + (Number.isNaN(x[2]) ? 5 : x[2]) + (i % 3) * 0.01 * x[1])
    const f = await trainHistogramForest(X, y, { nTrees: 1, bootstrap: false, minSamplesLeaf: 1, maxFeatures: 1, maxDepth: 64 })
    const p = f.predict(X).mean
    // duplicate feature rows with different targets can only be averaged
    const byKey = new Map<string, number[]>()
    X.forEach((x, i) => { const k = x.join(','); byKey.set(k, [...(byKey.get(k) ?? []), y[i]]) })
    X.forEach((x, i) => {
      const ys = byKey.get(x.join(',')) as number[]
      expect(p[i]).toBeCloseTo(ys.reduce((a, b) => a + b, 0) / ys.length, 4)
    })
  })

  it('sends NaN features to their own side, in training and prediction alike', async () => {
    const rng = createRng(9)
    const X = Array.from({ length: 400 }, () => [rng() < 0.2 ? NaN : rng(), rng()])
    const y = X.map((x) => Number.isNaN(x[0]) ? 10 : x[0])
    const f = await histogramBackend.train(X, y, { nTrees: 20, seed: 3 })
    const p = f.predict([[NaN, 0.5], [0.25, 0.5], [0.75, 0.5]]).mean
    expect(p[0]).toBeCloseTo(10, 1)
    expect(Math.abs(p[1] - 0.25)).toBeLessThan(0.1)
    expect(Math.abs(p[2] - 0.75)).toBeLessThan(0.1)
  })

  it('predicts in bin space exactly what walking the snapshot with raw thresholds gives', async () => {
    const rng = createRng(13)
    const X = Array.from({ length: 700 }, () => [rng() < 0.1 ? NaN : rng() * 4 - 2, Math.floor(rng() * 6), rng() ** 3])
    const y = X.map((x) => (Number.isNaN(x[0]) ? -3 : Math.sin(3 * x[0])) + x[1] * 0.4 + x[2])
    const f = await histogramBackend.train(X, y, { nTrees: 23, seed: 4 })
    const snap = f.toJSON() as unknown as Record<string, string>
    const dec = <T>(s: string, C: new (b: ArrayBuffer) => T): T => { const b = Buffer.from(s, 'base64'); return new C(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) }
    const edgeCounts = dec(snap.edgeCounts, Int32Array); const edges = dec(snap.edges, Float64Array)
    const nodeCounts = dec(snap.nodeCounts, Int32Array); const feats = dec(snap.features, Uint8Array)
    const bins = dec(snap.bins, Uint8Array); const leaves = dec(snap.leaves, Float32Array)
    const edgeOff = [0]; for (let i = 1; i < edgeCounts.length; i++) edgeOff.push(edgeOff[i - 1] + edgeCounts[i - 1])
    // reference: preorder trees walked with `x <= edge` on the raw value (NaN fails it: right)
    const trees: Array<Array<{ f: number, t: number, v: number, right: number }>> = []
    let base = 0; let bi = 0; let li = 0
    for (const n of nodeCounts) {
      const nodes = Array.from({ length: n }, (_, i) => feats[base + i] === 0xff
        ? { f: -1, t: 0, v: leaves[li++], right: -1 }
        : { f: feats[base + i], t: 0, v: 0, right: -1, bin: bins[bi++] }).map((nd) => ({ ...nd, t: nd.f >= 0 ? edges[edgeOff[nd.f] + (nd as { bin: number }).bin] : 0 }))
      const waiting: number[] = []
      for (let i = 0; i < n; i++) {
        if (i > 0 && nodes[i - 1].f < 0) nodes[waiting.pop() as number].right = i
        if (nodes[i].f >= 0) waiting.push(i)
      }
      trees.push(nodes); base += n
    }
    const walk = (x: number[]): number[] => trees.map((nodes) => { let k = 0; while (nodes[k].f >= 0) k = x[nodes[k].f] <= nodes[k].t ? k + 1 : nodes[k].right; return nodes[k].v })
    // probes on and around every split threshold, beyond the training range, +-Infinity and NaN
    const probes: number[][] = []
    for (const tr of trees.slice(0, 3)) for (const nd of tr) if (nd.f >= 0) for (const d of [-1e-9, 0, 1e-9]) { const x = [0.1, 2, 0.5]; x[nd.f] = nd.t + d; probes.push(x) }
    probes.push([-1e9, -5, -1], [1e9, 99, 7], [Infinity, Infinity, Infinity], [-Infinity, -Infinity, -Infinity], [NaN, NaN, NaN], [NaN, 3, 0.2])
    const got = f.predict(probes)
    probes.forEach((x, i) => {
      const per = walk(x)
      const m = per.reduce((a, b) => a + b, 0) / per.length
      expect(got.mean[i]).toBeCloseTo(m, 9)
      expect(got.std[i]).toBeCloseTo(Math.sqrt(per.reduce((a, b) => a + (b - m) ** 2, 0) / per.length), 9)
    })
  })

  it('answers small calls from a memo of binned rows with exactly what a batch walk gives', async () => {
    const f = await histogramBackend.train(train.X, train.y, { nTrees: 20, seed: 5 }) as HistogramForest
    // over 64 rows: the batch path, no memo
    const batch = f.predict(test.X.slice(0, 100))
    expect(f.memoStats()).toEqual({ hits: 0, misses: 0, entries: 0 })
    const rows = test.X.slice(0, 18)
    const first = f.predict(rows)
    expect(first.mean).toEqual(batch.mean.slice(0, 18))
    expect(first.std).toEqual(batch.std.slice(0, 18))
    expect(f.memoStats()).toMatchObject({ hits: 0, misses: 18 })
    // a row moved by far less than a bin width bins the same: a hit with the same answer
    const nudged = rows.map(x => x.map(v => v + 1e-9))
    expect(f.predict(nudged)).toEqual(first)
    expect(f.memoStats()).toMatchObject({ hits: 18, misses: 18 })
    // mixed hits and misses keep each row's own answer
    const mixed = [test.X[50], rows[3], test.X[60]]
    expect(f.predict(mixed)).toEqual({ mean: [batch.mean[50], batch.mean[3], batch.mean[60]], std: [batch.std[50], batch.std[3], batch.std[60]] })
  })

  it('predicts a shared task part and per-row tails exactly as the concatenated rows', async () => {
    const f = await histogramBackend.train(train.X, train.y, { nTrees: 20, seed: 7 }) as HistogramForest
    const cold = await histogramBackend.train(train.X, train.y, { nTrees: 20, seed: 7 }) as HistogramForest
    const F = train.X[0].length
    // the task is the first 3 columns of one test row; the tails the rest of 18 others (a NaN in one)
    for (const cut of [3, 1, F - 1]) {
      for (const base of [0, 30, 60]) {
        const task = test.X[base].slice(0, cut)
        const tails = test.X.slice(base, base + 18).map((x, i) => i === 5 ? [NaN, ...x.slice(cut + 1)] : x.slice(cut))
        const rows = tails.map(k => task.concat(k))
        const want = cold.predict(rows)
        // twice: misses, then the memo and the remembered tail bins
        const before = f.memoStats()
        expect(f.predictParts(task, tails)).toEqual(want)
        const mid = f.memoStats()
        expect(f.predictParts(task, tails)).toEqual(want)
        const after = f.memoStats()
        expect(after.misses).toBe(mid.misses)
        expect(after.hits - mid.hits).toBe(18)
        expect(mid.hits + mid.misses - before.hits - before.misses).toBe(18)
        // a task moved by far less than a bin width: the same answers, from the memo
        expect(f.predictParts(task.map(v => v + 1e-9), tails)).toEqual(want)
        expect(f.memoStats().misses).toBe(mid.misses)
        // and the plain call on the same rows agrees
        expect(f.predict(rows)).toEqual(want)
      }
    }
    // a task as wide as the forest, rows too short, or more rows than the memo path takes: the plain path
    expect(f.predictParts(test.X[0], [[], [1]])).toEqual(cold.predict([test.X[0], test.X[0].concat(1)]))
    expect(await catchCode(() => f.predictParts([1], [[2]]))).toBe('E_BAD_FEATURES')
    const many = test.X.slice(0, 100)
    expect(f.predictParts([], many)).toEqual(cold.predict(many))
  })

  it('round-trips through a JSON snapshot with identical predictions', async () => {
    const f = await histogramBackend.train(train.X, train.y, { nTrees: 25, seed: 11 })
    const snap = JSON.parse(JSON.stringify(f.toJSON()))
    const g = histogramBackend.load(snap)
    expect(g.backend).toBe('histogram')
    expect(g.predict(test.X)).toEqual(f.predict(test.X))
    expect(JSON.stringify(g.toJSON())).toBe(JSON.stringify(snap))
  })

  it('rejects corrupt snapshots and bad inputs with coded errors', async () => {
    const f = await histogramBackend.train(train.X, train.y, { nTrees: 3, seed: 1 })
    const snap = f.toJSON() as Record<string, unknown>
    expect(await catchCode(() => histogramBackend.load(null))).toBe('E_BAD_SNAPSHOT')
    expect(await catchCode(() => histogramBackend.load({ ...snap, version: 99 }))).toBe('E_BAD_SNAPSHOT')
    expect(await catchCode(() => histogramBackend.load({ ...snap, leaves: 'AAAA' }))).toBe('E_BAD_SNAPSHOT')
    expect(await catchCode(() => histogramBackend.load({ ...snap, features: 12 }))).toBe('E_BAD_SNAPSHOT')
    // a leaf marker where the tree needs a split: structure no longer adds up
    const feats = Buffer.from(snap.features as string, 'base64')
    feats[0] = 0xff; feats[1] = 0xff
    expect(await catchCode(() => histogramBackend.load({ ...snap, features: feats.toString('base64') }))).toBe('E_BAD_SNAPSHOT')
    expect(await catchCode(() => histogramBackend.train([], [], { nTrees: 3 }))).toBe('E_BAD_TRAINING_DATA')
    expect(await catchCode(() => histogramBackend.train([[1], [2]], [1, NaN], { nTrees: 3 }))).toBe('E_BAD_TRAINING_DATA')
    expect(await catchCode(() => histogramBackend.train([[1], [2, 3]], [1, 2], { nTrees: 3 }))).toBe('E_BAD_TRAINING_DATA')
    expect(await catchCode(() => histogramBackend.train([[1], [2]], [1, 2], { nTrees: 0 }))).toBe('E_BAD_TRAINING_DATA')
    expect(await catchCode(() => f.predict([[1, 2]]))).toBe('E_BAD_FEATURES')
  })

  it('is more uncertain far from the training data than near it', async () => {
    const rng = createRng(4)
    // dense on [0, 1], sparse on [1, 4]; y = x^2 has no noise, so spread comes from data density
    const X: number[][] = []
    for (let i = 0; i < 500; i++) X.push([rng(), rng()])
    for (let i = 0; i < 15; i++) X.push([1 + 3 * rng(), rng()])
    const y = X.map((x) => x[0] * x[0])
    const f = await histogramBackend.train(X, y, { nTrees: 60, seed: 2 })
    const { std } = f.predict([[0.5, 0.5], [3, 0.5], [10, 0.5]])
    expect(std[1]).toBeGreaterThan(5 * std[0])
    expect(std[2]).toBeGreaterThan(5 * std[0])
  })

  it('agrees with ml-random-forest on a small dataset (held-out R2)', async () => {
    const tr = friedman1(300, 8, 21)
    const te = friedman1(300, 8, 22)
    const ml = new RandomForestRegression({ nEstimators: 30, maxFeatures: 1.0, seed: 3, noOOB: true, treeOptions: { minNumSamples: 3 } })
    ml.train(tr.X, tr.y)
    const r2ml = r2(te.y, ml.predict(te.X) as number[])
    const hf = await histogramBackend.train(tr.X, tr.y, { nTrees: 30, seed: 3 })
    const r2h = r2(te.y, hf.predict(te.X).mean)
    expect(r2ml).toBeGreaterThan(0.4)
    expect(Math.abs(r2h - r2ml)).toBeLessThan(0.1)
  })

  it('fits the meta-model-shaped data (categorical knob columns) well', async () => {
    const tr = metaLike(1500, 1)
    const te = metaLike(500, 2)
    const f = await histogramBackend.train(tr.X, tr.y, { nTrees: 40, seed: 1 })
    expect(r2(te.y, f.predict(te.X).mean)).toBeGreaterThan(0.7)
  })
})

describe('worker threads', () => {
  it('falls back to in-thread training when running from .ts sources, with the same result', async () => {
    expect(workerScript()).toBeNull()
    const train = friedman1(300, 6, 1)
    const a = await trainHistogramForest(train.X, train.y, { nTrees: 8, seed: 5, workers: 0 })
    const b = await trainHistogramForest(train.X, train.y, { nTrees: 8, seed: 5, workers: 2 })
    expect(b.workersUsed).toBe(0)
    expect(b.predict(train.X)).toEqual(a.predict(train.X))
  })

  // The compiled module spawns real worker threads; `npm test` builds dist/ first.
  const distIndex = join(packageRoot(), 'dist', 'src', 'meta', 'forest', 'index.js')
  it.skipIf(!existsSync(distIndex))('gives the same forest on 0 and 2 workers (compiled dist/)', async () => {
    const mod = await import(pathToFileURL(distIndex).href) as typeof import('../../../../src/meta/forest/index.js')
    const train = friedman1(800, 10, 1)
    const test = friedman1(200, 10, 2)
    const a = await mod.trainHistogramForest(train.X, train.y, { nTrees: 12, seed: 5, workers: 0 })
    const b = await mod.trainHistogramForest(train.X, train.y, { nTrees: 12, seed: 5, workers: 2 })
    expect(a.workersUsed).toBe(0)
    expect(b.workersUsed).toBe(2)
    expect(b.predict(test.X)).toEqual(a.predict(test.X))
    expect(JSON.stringify(b.toJSON())).toBe(JSON.stringify(a.toJSON()))
    // and the compiled forest's snapshot loads into the source build identically
    expect(HistogramForest.load(JSON.parse(JSON.stringify(b.toJSON()))).predict(test.X)).toEqual(b.predict(test.X))
  })
})

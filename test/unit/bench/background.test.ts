import { describe, it, expect } from 'vitest'
import type { Engine, EngineSession, InferenceRequest, Method, MethodKnobs } from '../../../src/engine/types.js'
import { createBackgroundSweep, nextCell, pauseAfter, cellKey, type SweepCell } from '../../../src/bench/background.js'
import { createActivity } from '../../../src/util/activity.js'
import { generateWorkload } from '../../../src/bench/workloads.js'
import type { ModelDescriptor, UnsignedBody } from '../../../src/records/index.js'

const KNOBS: MethodKnobs = { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 1 }
const method = (id: string): Method => ({ id, description: id, lossless: true, knobs: { ...KNOBS } })
const MODEL: ModelDescriptor = { id: 'feedfacefeedface', name: 'fake', architecture: 'llama', params: 1, layers: 1, embd: 1, heads: 1, kvHeads: 1, ff: 1, vocab: 1, ctx: 64, weightBits: 16, fileType: 'F16' }

/** A scripted engine whose runBatch can be held open to simulate a long cell. */
function engine (hold?: { wait: Promise<void> }): Engine {
  return {
    info: { name: 'fake', version: '1' },
    backend: 'cpu',
    gpus: [],
    supports: () => ({ ok: true }),
    describe: async () => MODEL,
    open: async (_m, me): Promise<EngineSession> => ({
      model: MODEL,
      method: me,
      tokenize: t => t.split(' ').map(w => w.length),
      async runBatch (reqs: InferenceRequest[], o) {
        if (hold != null) {
          await Promise.race([hold.wait, new Promise((_resolve, reject) => o?.signal?.addEventListener('abort', () => reject(o.signal?.reason)))])
        }
        return { requests: reqs.map(() => ({ text: '', tokens: [1, 2], promptTokens: 3, outputTokens: 2, ttftMs: 1, latencyMs: 2 })), wallMs: 2 }
      },
      close: async () => {}
    }),
    close: async () => {}
  }
}

const w1 = generateWorkload('classify', {}, 'tiny')
const w2 = generateWorkload('chat', {}, 'tiny')
const cells: SweepCell[] = [method('baseline'), method('prefix-cache')].flatMap(m => [w1, w2].map(w => ({ method: m, workload: w })))

describe('background sweep', () => {
  it('visits cells with no data first, ties in catalog order', () => {
    expect(nextCell(cells, new Map())).toBe(cells[0])
    const counts = new Map([[cellKey('baseline', w1.name), 2], [cellKey('baseline', w2.name), 1], [cellKey('prefix-cache', w1.name), 1]])
    expect(nextCell(cells, counts)).toBe(cells[3])
    counts.set(cellKey('prefix-cache', w2.name), 1)
    expect(nextCell(cells, counts)).toBe(cells[1])
    expect(nextCell([], counts)).toBeUndefined()
  })

  it('pauses so that benchmarking takes `share` of the time', () => {
    expect(pauseAfter(1000, 0.1)).toBeCloseTo(9000)
    expect(pauseAfter(1000, 0.5)).toBeCloseTo(1000)
    expect(pauseAfter(1000, 1)).toBe(0)
    expect(pauseAfter(1000, 0)).toBe(Infinity)
  })

  it('runs one cell per step when idle and within budget, and records it', async () => {
    let clock = 1000
    const recorded: UnsignedBody[] = []
    const sweep = createBackgroundSweep({
      share: 0.5, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      now: () => clock,
      prepare: async () => ({ engine: engine(), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
      counts: async () => new Map([[cellKey('baseline', w1.name), 1]]),
      record: async b => { recorded.push(b); clock += 100 } // each cell "takes" 100 ms of the fake clock
    })
    expect(await sweep.tick()).toBe('ran')
    expect(recorded.map(b => `${b.method.id}/${b.workload.family}`)).toEqual(['baseline/chat']) // the empty cell first
    expect(await sweep.tick()).toBe('budget') // share 0.5: wait as long as the cell took
    clock += 100
    expect(await sweep.tick()).toBe('ran')
    expect(recorded.map(b => `${b.method.id}/${b.workload.family}`)).toEqual(['baseline/chat', 'prefix-cache/classify'])
    expect(sweep.stats().cells).toBe(2)
    await sweep.stop()
  })

  it('a quick first pass on a small model runs before the default model is even prepared, then the default model (issue #17)', async () => {
    let clock = 1000
    const recorded: string[] = []
    let mainPrepared = 0
    const quickCells: SweepCell[] = [method('baseline'), method('prefix-cache')].map(m => ({ method: m, workload: w1, firstPass: true }))
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      now: () => clock,
      prepareQuick: async () => ({ engine: engine(), model: { name: 'tiny', path: 'tiny' }, cells: quickCells, baseline: method('baseline') }),
      prepare: async () => { mainPrepared++; return { engine: engine(), model: { name: 'big', path: 'big' }, cells, baseline: method('baseline') } },
      counts: async () => new Map(),
      record: async b => { recorded.push(`${b.method.id}/${b.workload.family}`); clock += 10 }
    })
    expect(sweep.status().phase).toBe('first-pass')
    expect(await sweep.tick()).toBe('ran')
    expect(await sweep.tick()).toBe('ran')
    expect(recorded).toEqual(['baseline/classify', 'prefix-cache/classify'])
    expect(mainPrepared).toBe(0)
    expect(await sweep.tick()).toBe('ran')
    expect(mainPrepared).toBe(1)
    expect(recorded.length).toBe(3)
    await sweep.stop()

    // a quick plan that fails to prepare is skipped; none (undefined) goes straight to the default model
    for (const prepareQuick of [async () => { throw new Error('no tiny') }, async () => undefined]) {
      const got: string[] = []
      const s2 = createBackgroundSweep({
        share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
        prepareQuick,
        prepare: async () => ({ engine: engine(), model: { name: 'big', path: 'big' }, cells, baseline: method('baseline') }),
        counts: async () => new Map(),
        record: async b => { got.push(b.method.id) }
      })
      expect(await s2.tick()).toBe('ran')
      expect(got).toEqual(['baseline'])
      await s2.stop()
    }
  })

  it('never starts while a task runs, and an arriving task aborts the cell without recording it', async () => {
    const activity = createActivity()
    let release!: () => void
    const hold = { wait: new Promise<void>(resolve => { release = resolve }) }
    const recorded: UnsignedBody[] = []
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity, repeats: 1, timeoutMs: 10_000, defaultThreads: 1, pricePerHour: 0,
      prepare: async () => ({ engine: engine(hold), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
      counts: async () => new Map(),
      record: async b => { recorded.push(b) }
    })
    const end = activity.begin()
    expect(activity.idle()).toBe(false)
    expect(await sweep.tick()).toBe('busy')
    end()
    end() // idempotent
    expect(activity.idle()).toBe(true)
    const step = sweep.tick()
    await new Promise(resolve => setTimeout(resolve, 20))
    const end2 = activity.begin() // inference arrives mid-cell
    expect(await step).toBe('aborted')
    expect(recorded).toEqual([])
    end2()
    release()
    expect(await sweep.tick()).toBe('ran')
    expect(recorded).toHaveLength(1)
    // the aborted cell (baseline on classify) waits a little; the next one ran instead
    expect(`${recorded[0].method.id}/${recorded[0].workload.family}`).toBe('baseline/chat')
    await sweep.stop()
  })

  it('records a failing cell once with its error, backs it off, and goes on', async () => {
    let clock = 1000
    const recorded: UnsignedBody[] = []
    const e = engine()
    e.supports = (_m, me) => me.id === 'prefix-cache' ? { ok: false, reason: 'not here' } : { ok: true }
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      now: () => clock,
      failureBackoffMs: { base: 10_000, max: 100_000 },
      prepare: async () => ({ engine: e, model: { name: 'fake', path: 'x' }, cells: [cells[2], cells[0]], baseline: method('baseline') }),
      counts: async () => new Map(),
      record: async b => { recorded.push(b) }
    })
    expect(await sweep.tick()).toBe('ran') // baseline first (the cold-start order)
    expect(await sweep.tick()).toBe('ran') // prefix-cache fails: recorded once
    expect(recorded.map(b => [b.method.id, b.result.ok])).toEqual([['baseline', true], ['prefix-cache', false]])
    expect(sweep.status().lastError?.code).toBe('E_CELL_FAILED')
    expect(await sweep.tick()).toBe('ran') // back-off: the baseline again (coverage), not the failing cell
    expect(recorded.at(-1)?.method.id).toBe('baseline')
    clock += 10_001
    expect(await sweep.tick()).toBe('ran') // back-off over: retried, failed again, not recorded again
    expect(recorded.filter(b => !b.result.ok)).toHaveLength(1)
    expect(sweep.status()).toMatchObject({ running: false, cell: null, phase: 'explore', cellsDone: 4 })
    await sweep.stop()
  })

  it('a store error stops the sweep with a clear status (the caller goes on)', async () => {
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      prepare: async () => ({ engine: engine(), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
      counts: async () => new Map(),
      record: async () => { throw Object.assign(new Error('no space left on device'), { code: 'E_STORE_FULL' }) }
    })
    expect(await sweep.tick()).toBe('stopped')
    expect(await sweep.tick()).toBe('stopped')
    expect(sweep.status()).toMatchObject({ phase: 'stopped', lastError: { code: 'E_STORE_FULL' } })
    await sweep.stop()
  })

  it('a model that fails to load is an error with its code, retried after a pause', async () => {
    let clock = 0
    let tries = 0
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      now: () => clock,
      prepare: async () => { tries++; throw Object.assign(new Error('bad gguf'), { code: 'E_MODEL_LOAD' }) },
      counts: async () => new Map(),
      record: async () => {}
    })
    expect(await sweep.tick()).toBe('error')
    expect(sweep.status().lastError).toEqual({ code: 'E_MODEL_LOAD', message: 'bad gguf' })
    expect(await sweep.tick()).toBe('budget')
    clock += 60_001
    expect(await sweep.tick()).toBe('error')
    expect(tries).toBe(2)
    await sweep.stop()
  })

  it('measures where the meta-model predicts a possible gain once the first pass is done', async () => {
    const recorded: UnsignedBody[] = []
    const counts = new Map(cells.map(c => [cellKey(c.method.id, c.workload.name), 1]))
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      prepare: async () => ({ engine: engine(), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
      counts: async () => counts,
      tasks: async () => new Map([[w2.name, { hardware: { cores: 1, threads: 1, ramMiB: 1, gpus: [], backend: 'cpu' }, model: MODEL, workload: { features: {} } }]]),
      predict: (_task, ms) => new Map(ms.map(m => [m, m === 'prefix-cache' ? { mean: 0, std: 1 } : { mean: 0.5, std: 0 }])),
      record: async b => { recorded.push(b) }
    })
    expect(await sweep.tick()).toBe('ran')
    expect(recorded.map(b => `${b.method.id}/${b.workload.family}`)).toEqual(['prefix-cache/chat'])
    await sweep.stop()
  })

  it('measures on the workload that served tasks match, counting every author\'s records (issue #17 demand step)', async () => {
    const recorded: UnsignedBody[] = []
    const hw = { cores: 1, threads: 1, ramMiB: 1, gpus: [], backend: 'cpu' as const }
    const three = [method('baseline'), method('prefix-cache'), method('batch-4')]
    const cells3: SweepCell[] = three.flatMap(m => [w1, w2].map(w => ({ method: m, workload: w })))
    const own = new Map([[cellKey('baseline', w1.name), 1], [cellKey('baseline', w2.name), 1]])
    const seen: string[] = []
    const sweep = createBackgroundSweep({
      share: 1, intervalMs: 1000, activity: createActivity(), repeats: 1, timeoutMs: 1000, defaultThreads: 1, pricePerHour: 0,
      prepare: async () => ({ engine: engine(), model: { name: 'fake', path: 'x' }, cells: cells3, baseline: method('baseline') }),
      counts: async () => own,
      tasks: async () => new Map([[w1.name, { hardware: hw, model: MODEL, workload: { features: { promptTokensMean: 10, requests: 6 } } }], [w2.name, { hardware: hw, model: MODEL, workload: { features: { promptTokensMean: 300, requests: 4 } } }]]),
      // another peer measured prefix-cache on chat already
      measured: async (model) => { seen.push(model.id); return new Map([[cellKey('baseline', w2.name), { n: 1, mean: 5 }], [cellKey('prefix-cache', w2.name), { n: 1, mean: 5.5 }]]) },
      // served tasks look like chat (w2)
      served: async () => [{ promptTokensMean: 290, requests: 4 }, { promptTokensMean: 310, requests: 4 }],
      record: async b => { recorded.push(b) }
    })
    expect(await sweep.tick()).toBe('ran')
    expect(seen).toEqual([MODEL.id])
    expect(recorded.map(b => `${b.method.id}/${b.workload.family}`)).toEqual(['batch-4/chat'])
    expect(sweep.status().cell).toBeNull()
    await sweep.stop()
  })
})

describe('background sweep on a host shared with other daemons (issue #17 item 6)', () => {
  it('waits for the host\'s benchmark lock and for other daemons\' inference, and an arriving one aborts the cell', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { createHostCoordinator } = await import('../../../src/util/host-lock.js')
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-sweep-host-'))
    try {
      const mine = createHostCoordinator({ dir })
      const other = createHostCoordinator({ dir })
      let release!: () => void
      const hold = { wait: new Promise<void>(resolve => { release = resolve }) }
      const recorded: UnsignedBody[] = []
      const sweep = createBackgroundSweep({
        share: 1, intervalMs: 1000, activity: createActivity(), host: mine, repeats: 1, timeoutMs: 10_000, defaultThreads: 1, pricePerHour: 0,
        prepare: async () => ({ engine: engine(hold), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
        counts: async () => new Map(),
        record: async b => { recorded.push(b) }
      })
      // another daemon benchmarks: no cell
      const otherBench = other.tryBench()!
      expect(await sweep.tick()).toBe('busy')
      otherBench()
      // another daemon serves: no cell
      const otherServes = createActivity({ mark: other.markBusy })
      const end = otherServes.begin()
      expect(await sweep.tick()).toBe('busy')
      expect(sweep.stats().hostYields).toBe(2)
      end()
      // a cell holds the host's lock while it runs; the other daemon starting to serve aborts it
      const step = sweep.tick()
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(other.tryBench()).toBeUndefined()
      const end2 = otherServes.begin()
      expect(await step).toBe('aborted')
      expect(recorded).toEqual([])
      end2()
      release()
      expect(await sweep.tick()).toBe('ran')
      const st = sweep.status()
      expect(st.recent.map(c => c.outcome)).toEqual(['aborted', 'ran'])
      expect(st.recent.every(c => c.endedAt >= c.startedAt)).toBe(true)
      // the lock is free after the cell
      const again = other.tryBench()
      expect(again).toBeDefined()
      again!()
      await sweep.stop()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('an unusable host directory does not stop the sweep: it measures without the host\'s turns', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { createHostCoordinator } = await import('../../../src/util/host-lock.js')
    const root = mkdtempSync(join(tmpdir(), 'swarmtune-sweep-host-'))
    try {
      const notADir = join(root, 'file')
      writeFileSync(notADir, 'x')
      const host = createHostCoordinator({ dir: notADir })
      expect(() => host.tryBench()).toThrow()
      const recorded: UnsignedBody[] = []
      const sweep = createBackgroundSweep({
        share: 1, intervalMs: 1000, activity: createActivity(), host, repeats: 1, timeoutMs: 10_000, defaultThreads: 1, pricePerHour: 0,
        prepare: async () => ({ engine: engine(), model: { name: 'fake', path: 'x' }, cells, baseline: method('baseline') }),
        counts: async () => new Map(),
        record: async b => { recorded.push(b) }
      })
      expect(await sweep.tick()).toBe('ran')
      expect(recorded).toHaveLength(1)
      await sweep.stop()
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

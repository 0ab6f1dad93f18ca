import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseHistoryJsonl } from '../../../src/cli/history-source.js'
import { buildDataset, type HistoryBody } from '../../../src/meta/dataset.js'
import type { EvalRow } from '../../../src/meta/eval.js'
import {
  appendPoint, createLearningCurve, CURVE_KEY, curvePoint, defaultRow, evalSplitOf, MIN_EVAL_TASKS, restoreState, scorableTasks,
  type EvalSummary
} from '../../../src/meta/learning-curve.js'
import { packageRoot } from '../../../src/util/paths.js'

const FIXTURE = join(packageRoot(), 'test', 'fixtures', 'history-amd-epyc-2c-cpu-v2.jsonl')
const history = parseHistoryJsonl(readFileSync(FIXTURE, 'utf8'), FIXTURE)

function row (selector: string, regret: number, def = false): EvalRow {
  return { selector, top1: 1 - regret, top1Within3pct: 1, regret, speedupOverBaseline: 1, oracleShare: 1, ...(def ? { default: true as const } : {}) }
}
const summary: EvalSummary = {
  split: 'workload',
  folds: 5,
  tasks: 40,
  grouping: 'workload',
  rows: [row('random', 0.4), row('single-best', 0.05), row('per-workload-best', 0.04), row('knn', 0.1), row('some-learner', 0.03, true), row('other+safe-default', 0.035), row('oracle', 0)]
}

describe('learning-curve points', () => {
  it('keeps the fixed rules, the row flagged default (whatever its name) and safe-default rows', () => {
    const p = curvePoint(summary, 1000, 760, 1)
    expect(p).toMatchObject({ at: 1000, records: 760, authors: 1, tasks: 40, split: 'workload' })
    expect(p.rows.map(r => r.selector)).toEqual(['single-best', 'per-workload-best', 'some-learner', 'other+safe-default'])
    expect(defaultRow(p.rows)).toEqual({ selector: 'some-learner', top1: 0.97, regret: 0.03, default: true })
  })

  it('keeps at most the last `max` points', () => {
    let curve = appendPoint([], curvePoint(summary, 0, 1, 1), 3)
    for (let i = 1; i < 5; i++) curve = appendPoint(curve, curvePoint(summary, i, 1, 1), 3)
    expect(curve.map(p => p.at)).toEqual([2, 3, 4])
  })

  it('drops a malformed stored state instead of trusting it', () => {
    expect(restoreState(undefined)).toEqual({ latest: null, curve: [] })
    expect(restoreState({ latest: { rows: 'x' }, curve: [null, { at: 'x' }, { at: 5, rows: [] }] })).toEqual({ latest: null, curve: [{ at: 5, rows: [] }] })
  })

  it('evaluates a one-host history grouped by workload and counts its scorable tasks', () => {
    const ds = buildDataset(history)
    expect(evalSplitOf(ds)).toBe('workload')
    expect(scorableTasks(ds)).toBe(40)
    expect(scorableTasks(buildDataset(history.slice(0, 3)))).toBeLessThan(MIN_EVAL_TASKS)
  })
})

describe('createLearningCurve', () => {
  function setup (bodies: HistoryBody[], intervalMs = 60_000): { curve: ReturnType<typeof createLearningCurve>, kv: Map<string, unknown>, calls: () => number, clock: { t: number } } {
    const kv = new Map<string, unknown>()
    const clock = { t: 1_000_000 }
    let n = 0
    const curve = createLearningCurve({ intervalMs, nTrees: 4 }, {
      store: { getMeta: async <T>(k: string) => kv.get(k) as T | undefined, putMeta: async (k, v) => { kv.set(k, structuredClone(v)) } },
      history: async () => ({ bodies, authors: 2 }),
      dataset: b => buildDataset(b),
      evaluate: async () => { n++; return summary },
      now: () => clock.t
    })
    return { curve, kv, calls: () => n, clock }
  }

  it('appends a point, persists it, and a restart reads it back', async () => {
    const { curve, kv } = setup(history)
    const p = await curve.evaluateNow()
    expect(p?.records).toBe(history.length)
    expect(curve.state().latest).toEqual(summary)
    expect((kv.get(CURVE_KEY) as { curve: unknown[] }).curve).toHaveLength(1)
    const again = createLearningCurve({ intervalMs: 1, nTrees: 4 }, {
      store: { getMeta: async <T>(k: string) => kv.get(k) as T | undefined, putMeta: async () => {} },
      history: async () => ({ bodies: [], authors: 0 }),
      dataset: b => buildDataset(b)
    })
    await again.load()
    expect(again.state().curve).toEqual(curve.state().curve)
  })

  it('skips a history with too few scorable tasks and one that has not changed', async () => {
    const small = setup(history.slice(0, 3))
    expect(await small.curve.evaluateNow()).toBeNull()
    expect(small.calls()).toBe(0)
    const full = setup(history)
    await full.curve.evaluateNow()
    expect(await full.curve.evaluateNow()).toBeNull()
    expect(full.calls()).toBe(1)
  })

  it('does nothing when turned off', async () => {
    const { curve, calls } = setup(history, 0)
    curve.trained()
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(calls()).toBe(0)
    curve.stop()
  })
})

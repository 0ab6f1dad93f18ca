import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseHistoryJsonl } from '../../../src/cli/history-source.js'
import { buildDataset, type Split } from '../../../src/meta/dataset.js'
import { DEFAULT_SELECTOR_ROW, evaluate } from '../../../src/meta/eval.js'
import { getBackend } from '../../../src/meta/ml-forest.js'
import { packageRoot } from '../../../src/util/paths.js'

/*
 * The project's own recorded history v2 (issue 17 item 4; docs/BENCHMARKS.md "Own history v2"):
 * ≥ 20 tasks over the two embedded models. `eval` must score every task (no silent exclusions)
 * and the default selector must not do worse than single-best on any split the history supports.
 * Correctness only: no timing goals.
 */
const FIXTURE = join(packageRoot(), 'test', 'fixtures', 'history-amd-epyc-2c-cpu-v2.jsonl')
const history = parseHistoryJsonl(readFileSync(FIXTURE, 'utf8'), FIXTURE)
const ds = buildDataset(history)

describe('own history v2 fixture', () => {
  it('holds at least 20 tasks over both embedded models, each with a choice', () => {
    expect(ds.tasks.length).toBeGreaterThanOrEqual(20)
    expect(new Set(history.map(b => b.model.name))).toEqual(new Set(['tiny', 'small']))
    for (const t of ds.tasks) {
      expect(t.reference, t.key).toBeDefined()
      expect(t.cells.size, t.key).toBeGreaterThanOrEqual(2)
    }
  })

  for (const split of ['workload', 'model', 'random'] as Split[]) {
    it(`eval --split ${split} scores every task and safe-default's regret ≤ single-best's`, async () => {
      const backends = { 'histogram-forest': await getBackend('histogram') }
      const r = await evaluate(ds, { split, seed: 1, nTrees: 30, minSamplesLeaf: 2, maxFeatures: 1, mlRandomForest: false, backends })
      expect(r.tasks).toBe(ds.tasks.length)
      expect(r.excluded).toEqual({})
      const row = (name: string): number => {
        const x = r.rows.find(y => y.selector === name)
        expect(x, name).toBeDefined()
        return (x as { regret: number }).regret
      }
      expect(row(DEFAULT_SELECTOR_ROW)).toBeLessThanOrEqual(row('single-best') + 1e-12)
    }, 60_000)
  }
})

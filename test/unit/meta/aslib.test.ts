import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildScenario, evaluateScenario, gap, par10Of, parseArff, readScenario, singleBest, solvable } from '../../../src/meta/aslib.js'
import { mlForestBackend } from '../../../src/meta/ml-forest.js'

import { writeMiniScenario } from '../../../src/meta/aslib-fixture.js'

// the project's own synthetic scenario, written fresh for each run (no ASlib files are committed)
const MINI = mkdtempSync(join(tmpdir(), 'swarmtune-aslib-mini-'))
writeMiniScenario(MINI)
afterAll(() => { rmSync(MINI, { recursive: true, force: true }) })

describe('ARFF parser', () => {
  it('reads quoted strings, missing values, nominal types and repeated @DATA', () => {
    const a = parseArff(`% comment
@RELATION 'r'
@ATTRIBUTE instance_id STRING
@ATTRIBUTE 'x y' NUMERIC
@attribute status {ok, timeout}
@DATA
@DATA
'a,b',1.5,ok
"c'd",?,timeout
plain , -2e3 , ok
`)
    expect(a.relation).toBe('r')
    expect(a.attributes.map(x => x.name)).toEqual(['instance_id', 'x y', 'status'])
    expect(a.attributes[2].type).toBe('nominal')
    expect(a.data).toEqual([['a,b', 1.5, 'ok'], ['c\'d', null, 'timeout'], ['plain', -2000, 'ok']])
  })

  it('rejects malformed files with E_ARFF', () => {
    expect(() => parseArff('@RELATION r\n@ATTRIBUTE a NUMERIC\n@DATA\n1,2\n')).toThrow(expect.objectContaining({ code: 'E_ARFF' }))
    expect(() => parseArff('@RELATION r\n@ATTRIBUTE a NUMERIC\n@DATA\nabc\n')).toThrow(/not a number/)
    expect(() => parseArff('@RELATION r\n@ATTRIBUTE a STRING\n@DATA\n\'open\n')).toThrow(/unterminated/)
    expect(() => parseArff('@RELATION r\n@ATTRIBUTE a NUMERIC\n')).toThrow(/no @data/)
  })
})

describe('ASlib scenario (mini fixture written by scripts/make-aslib-fixture.ts)', () => {
  it('reads the scenario: PAR10 matrix, feature costs, folds', async () => {
    const sc = await readScenario(MINI)
    expect(sc.name).toBe('MINI-FIXTURE')
    expect(sc.instances).toHaveLength(48)
    expect(sc.algorithms).toEqual(['alpha', 'beta', 'gamma'])
    expect(sc.featureNames).toEqual(['f1', 'f2', 'f3'])
    expect(sc.instances).toContain('inst,0')
    expect(sc.folds).toBe(4)
    // timeouts cost 10 × cutoff
    expect(sc.par10[11]).toEqual([1000, 1000, 1000])
    expect(solvable(sc, 11)).toBe(false)
    expect(sc.features[3][2]).toBeNull()
    // instance 4 has a missing 'extra' step cost: it counts 0, 'basic' is still paid
    expect(sc.featureCost[4]).toBeGreaterThan(0.1)
    expect(sc.featureCost[4]).toBeLessThan(0.3)
  })

  it('gap formula: SBS → 1, VBS → 0 by construction', async () => {
    const sc = await readScenario(MINI)
    const test = sc.instances.map((_, i) => i).filter(i => solvable(sc, i))
    const sbs = singleBest(sc, test)
    const mean = (f: (i: number) => number) => test.reduce((s, i) => s + f(i), 0) / test.length
    const sbsPar = mean(i => par10Of(sc, i, sbs, false))
    const vbsPar = mean(i => Math.min(...sc.par10[i]))
    expect(gap(sbsPar, vbsPar, sbsPar)).toBe(1)
    expect(gap(vbsPar, vbsPar, sbsPar)).toBe(0)
    expect(gap(5, 5, 5)).toBe(0)
    // the selector pays the feature cost: choosing the VBS algorithm costs more than the VBS
    const withCost = mean(i => par10Of(sc, i, sc.par10[i].indexOf(Math.min(...sc.par10[i])), true))
    expect(withCost).toBeCloseTo(vbsPar + mean(i => sc.featureCost[i]), 6)
    expect(sbs).toBe(sc.algorithms.indexOf('alpha'))
  })

  it('a feature cost that pushes a run past the cutoff makes it a PAR10 timeout', () => {
    const sc = buildScenario('t', {
      description: 'algorithm_cutoff_time: 10\nperformance_measures: [runtime]\nperformance_type: [runtime]\n',
      algorithmRuns: '@RELATION r\n@ATTRIBUTE instance_id STRING\n@ATTRIBUTE repetition NUMERIC\n@ATTRIBUTE algorithm STRING\n@ATTRIBUTE runtime NUMERIC\n@ATTRIBUTE runstatus {ok,timeout}\n@DATA\ni1,1,a,9,ok\ni1,1,b,12,ok\n',
      featureValues: '@RELATION f\n@ATTRIBUTE instance_id STRING\n@ATTRIBUTE repetition NUMERIC\n@ATTRIBUTE x NUMERIC\n@DATA\ni1,1,1\n',
      featureCosts: '@RELATION c\n@ATTRIBUTE instance_id STRING\n@ATTRIBUTE repetition NUMERIC\n@ATTRIBUTE s NUMERIC\n@DATA\ni1,1,2\n',
      cv: '@RELATION cv\n@ATTRIBUTE instance_id STRING\n@ATTRIBUTE repetition NUMERIC\n@ATTRIBUTE fold NUMERIC\n@DATA\ni1,1,1\n'
    })
    expect(sc.par10[0]).toEqual([9, 100]) // runtime ≥ cutoff counts as a timeout
    expect(par10Of(sc, 0, 0, false)).toBe(9)
    expect(par10Of(sc, 0, 0, true)).toBe(100)
  })

  it('non-runtime scenarios are refused', () => {
    expect(() => buildScenario('q', { description: 'algorithm_cutoff_time: 5\nperformance_type: [solution_quality]\n', algorithmRuns: '', featureValues: '', cv: '' }))
      .toThrow(expect.objectContaining({ code: 'E_ASLIB_UNSUPPORTED' }))
  })

  it('the per-algorithm forest selector closes most of the SBS–VBS gap and skips unsolved instances', async () => {
    const sc = await readScenario(MINI)
    // log target: with 36 training rows, raw PAR10 leaves are dominated by gamma's random
    // timeouts (1000 vs ~10); the real scenarios are large enough for the raw default
    const r = await evaluateScenario(sc, { backend: mlForestBackend, nTrees: 8, seed: 1, target: 'log' })
    expect(r.folds).toHaveLength(4)
    expect(r.folds.reduce((s, f) => s + f.instances, 0)).toBe(44) // 4 unsolved skipped
    expect(r.par10.vbs).toBeLessThan(r.par10.sbs)
    expect(r.par10.selector).toBeGreaterThanOrEqual(r.par10.vbs)
    expect(r.normalizedGap).toBeLessThan(0.6)
    expect(r.normalizedGap).toBeGreaterThan(0)
    expect(r.target).toBe('log')
    const raw = await evaluateScenario(sc, { backend: mlForestBackend, nTrees: 4, seed: 1, onlyFolds: [1] })
    expect(raw.target).toBe('raw')
    expect(raw.folds.map(f => f.fold)).toEqual([1])
    expect(raw.par10.selector).toBeGreaterThanOrEqual(raw.par10.vbs)
  })
})

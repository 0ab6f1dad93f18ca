import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { SwarmtuneError } from '../util/errors.js'
import type { LearnerBackend } from './learner.js'

/**
 * ASlib (algorithm selection library) scenarios: a small ARFF parser, a scenario reader and the
 * Run2Survive evaluation (Tornede et al., ACML 2020): 10-fold CV from cv.arff; on each test fold,
 * instances that no algorithm solves are skipped; PAR10 = runtime (+ feature cost for the
 * selector) when under the cutoff, else 10 × cutoff; SBS = the algorithm with the best mean
 * PAR10 on the training folds, VBS = per-instance best; neither pays feature costs. The selector
 * pays the sum of all feature-step costs of the instance ('?' counts 0), since it uses every
 * feature (all default steps).
 */
export class AslibError extends SwarmtuneError {}

// ------------------------------------------------------------------ ARFF

export type ArffValue = string | number | null

export interface ArffAttribute { name: string, type: string }
export interface Arff { relation: string, attributes: ArffAttribute[], data: ArffValue[][] }

/** Split a line on commas outside quotes; unquote '…' and "…" (with backslash escapes). */
function splitArffLine (line: string, where: string): Array<{ text: string, quoted: boolean }> {
  const out: Array<{ text: string, quoted: boolean }> = []
  let i = 0
  const n = line.length
  while (i <= n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++
    if (i < n && (line[i] === '\'' || line[i] === '"')) {
      const q = line[i++]
      let s = ''
      while (i < n && line[i] !== q) {
        if (line[i] === '\\' && i + 1 < n) { s += line[i + 1]; i += 2 } else s += line[i++]
      }
      if (i >= n) throw new AslibError('E_ARFF', `${where}: unterminated quoted value`)
      i++
      while (i < n && (line[i] === ' ' || line[i] === '\t')) i++
      if (i < n && line[i] !== ',') throw new AslibError('E_ARFF', `${where}: text after a quoted value`)
      out.push({ text: s, quoted: true })
    } else {
      let j = i
      while (j < n && line[j] !== ',') j++
      out.push({ text: line.slice(i, j).trim(), quoted: false })
      i = j
    }
    i++ // skip the comma
  }
  return out
}

function parseAttrLine (rest: string, where: string): ArffAttribute {
  rest = rest.trim()
  let name: string
  let after: string
  if (rest.startsWith('\'') || rest.startsWith('"')) {
    const q = rest[0]
    const end = rest.indexOf(q, 1)
    if (end < 0) throw new AslibError('E_ARFF', `${where}: unterminated attribute name`)
    name = rest.slice(1, end)
    after = rest.slice(end + 1).trim()
  } else {
    const m = /^(\S+)\s+(.*)$/.exec(rest)
    if (m == null) throw new AslibError('E_ARFF', `${where}: attribute without a type`)
    name = m[1]
    after = m[2].trim()
  }
  const type = after.startsWith('{') ? 'nominal' : after.toLowerCase()
  return { name, type }
}

/** Parse ARFF text: '%' comments, @relation/@attribute/@data (any case), '?' = missing. */
export function parseArff (text: string, source = 'arff'): Arff {
  const attributes: ArffAttribute[] = []
  const data: ArffValue[][] = []
  let relation = ''
  let inData = false
  const lines = text.split(/\r?\n/)
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = lines[ln]
    const line = raw.trim()
    if (line === '' || line.startsWith('%')) continue
    const where = `${source}:${ln + 1}`
    if (!inData) {
      const lower = line.toLowerCase()
      if (lower.startsWith('@relation')) relation = line.slice(9).trim().replace(/^['"]|['"]$/g, '')
      else if (lower.startsWith('@attribute')) attributes.push(parseAttrLine(line.slice(10), where))
      else if (lower.startsWith('@data')) inData = true
      else throw new AslibError('E_ARFF', `${where}: unexpected header line "${line.slice(0, 40)}"`)
      continue
    }
    if (line.startsWith('@')) continue // a repeated @DATA (seen in ASlib files)
    const cells = splitArffLine(line, where)
    if (cells.length !== attributes.length) throw new AslibError('E_ARFF', `${where}: ${cells.length} values, expected ${attributes.length}`)
    data.push(cells.map((c, k) => {
      if (!c.quoted && c.text === '?') return null
      const t = attributes[k].type
      if (t === 'numeric' || t === 'real' || t === 'integer') {
        const v = Number(c.text)
        if (c.text === '' || !Number.isFinite(v)) throw new AslibError('E_ARFF', `${where}: "${c.text}" is not a number (attribute ${attributes[k].name})`)
        return v
      }
      return c.text
    }))
  }
  if (!inData) throw new AslibError('E_ARFF', `${source}: no @data section`)
  return { relation, attributes, data }
}

// ------------------------------------------------------------------ scenario

export interface AslibScenario {
  name: string
  cutoff: number
  algorithms: string[]
  instances: string[]
  featureNames: string[]
  /** [instance][feature], null = missing */
  features: Array<Array<number | null>>
  /** [instance][algorithm] PAR10 runtime: runtime if ok and < cutoff, else 10 × cutoff */
  par10: number[][]
  /** [instance] summed feature-step cost (0 without feature_costs.arff) */
  featureCost: number[]
  /** [instance] fold 1..k */
  fold: number[]
  folds: number
}

async function readText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new AslibError('E_ASLIB_MISSING', `cannot read ${file}: ${(err as Error).message}`)
  }
}

async function readOptional (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch {
    return undefined
  }
}

function col (a: Arff, name: string, file: string): number {
  const i = a.attributes.findIndex(x => x.name.toLowerCase() === name.toLowerCase())
  if (i < 0) throw new AslibError('E_ASLIB_FORMAT', `${file}: no attribute "${name}"`)
  return i
}

export interface ScenarioFiles {
  description: string
  algorithmRuns: string
  featureValues: string
  featureCosts?: string
  cv: string
}

/** Build a scenario from file contents (pure). */
export function buildScenario (name: string, files: ScenarioFiles): AslibScenario {
  let desc: Record<string, unknown>
  try {
    desc = parseYaml(files.description) as Record<string, unknown>
  } catch (err) {
    throw new AslibError('E_ASLIB_FORMAT', `description.txt is not YAML: ${(err as Error).message}`)
  }
  const cutoff = Number(desc.algorithm_cutoff_time)
  if (!Number.isFinite(cutoff) || cutoff <= 0) throw new AslibError('E_ASLIB_FORMAT', 'description.txt: algorithm_cutoff_time must be a positive number')
  const ptype = desc.performance_type
  const ptypes = Array.isArray(ptype) ? ptype : [ptype]
  if (ptypes[0] != null && String(ptypes[0]).toLowerCase() !== 'runtime') throw new AslibError('E_ASLIB_UNSUPPORTED', `performance_type ${String(ptypes[0])}: only runtime scenarios are supported`)
  const measures = desc.performance_measures
  const measure = String((Array.isArray(measures) ? measures[0] : measures) ?? 'runtime')

  const fv = parseArff(files.featureValues, 'feature_values.arff')
  const fvId = col(fv, 'instance_id', 'feature_values.arff')
  const fvRep = fv.attributes.findIndex(a => a.name.toLowerCase() === 'repetition')
  const featCols = fv.attributes.map((_, i) => i).filter(i => i !== fvId && i !== fvRep)
  const featureNames = featCols.map(i => fv.attributes[i].name)
  const instIndex = new Map<string, number>()
  const instances: string[] = []
  const sums: Array<Array<{ s: number, n: number }>> = []
  for (const row of fv.data) {
    const id = String(row[fvId])
    let k = instIndex.get(id)
    if (k == null) {
      k = instances.length
      instIndex.set(id, k)
      instances.push(id)
      sums.push(featCols.map(() => ({ s: 0, n: 0 })))
    }
    featCols.forEach((c, j) => {
      const v = row[c]
      if (typeof v === 'number') { sums[k as number][j].s += v; sums[k as number][j].n++ }
    })
  }
  // repetitions of the feature computation are averaged
  const features = sums.map(r => r.map(x => (x.n > 0 ? x.s / x.n : null)))

  const ar = parseArff(files.algorithmRuns, 'algorithm_runs.arff')
  const aId = col(ar, 'instance_id', 'algorithm_runs.arff')
  const aAlg = col(ar, 'algorithm', 'algorithm_runs.arff')
  const aRt = col(ar, measure, 'algorithm_runs.arff')
  const aSt = col(ar, 'runstatus', 'algorithm_runs.arff')
  const algorithms = [...new Set(ar.data.map(r => String(r[aAlg])))].sort()
  const algIndex = new Map(algorithms.map((a, i) => [a, i]))
  const acc: Array<Array<{ s: number, n: number }>> = instances.map(() => algorithms.map(() => ({ s: 0, n: 0 })))
  for (const r of ar.data) {
    const k = instIndex.get(String(r[aId]))
    if (k == null) continue // runs of instances without features cannot be selected for
    const a = algIndex.get(String(r[aAlg])) as number
    const rt = r[aRt]
    const ok = String(r[aSt]).trim() === 'ok' && typeof rt === 'number' && rt < cutoff
    acc[k][a].s += ok ? (rt as number) : 10 * cutoff
    acc[k][a].n++
  }
  const par10 = acc.map(r => r.map(x => (x.n > 0 ? x.s / x.n : 10 * cutoff)))

  const featureCost = instances.map(() => 0)
  if (files.featureCosts != null) {
    const fc = parseArff(files.featureCosts, 'feature_costs.arff')
    const cId = col(fc, 'instance_id', 'feature_costs.arff')
    const cRep = fc.attributes.findIndex(a => a.name.toLowerCase() === 'repetition')
    const steps = fc.attributes.map((_, i) => i).filter(i => i !== cId && i !== cRep)
    const seen = new Map<number, number>()
    for (const r of fc.data) {
      const k = instIndex.get(String(r[cId]))
      if (k == null) continue
      // every step is used (all features), so its cost is paid; a missing cost counts 0
      const cost = steps.reduce((s, c) => s + (typeof r[c] === 'number' ? (r[c] as number) : 0), 0)
      const n = (seen.get(k) ?? 0) + 1
      seen.set(k, n)
      featureCost[k] += (cost - featureCost[k]) / n // mean over repetitions
    }
  }

  const cv = parseArff(files.cv, 'cv.arff')
  const cvId = col(cv, 'instance_id', 'cv.arff')
  const cvFold = col(cv, 'fold', 'cv.arff')
  const fold = instances.map(() => 0)
  for (const r of cv.data) {
    const k = instIndex.get(String(r[cvId]))
    if (k != null) fold[k] = Number(r[cvFold])
  }
  const missing = fold.findIndex(f => !(f >= 1))
  if (missing >= 0) throw new AslibError('E_ASLIB_FORMAT', `cv.arff has no fold for instance ${instances[missing]}`)
  return { name, cutoff, algorithms, instances, featureNames, features, par10, featureCost, fold, folds: Math.max(...fold) }
}

/** Read an ASlib scenario folder. */
export async function readScenario (dir: string): Promise<AslibScenario> {
  const d = resolve(dir)
  const [description, algorithmRuns, featureValues, cv, featureCosts] = await Promise.all([
    readText(join(d, 'description.txt')),
    readText(join(d, 'algorithm_runs.arff')),
    readText(join(d, 'feature_values.arff')),
    readText(join(d, 'cv.arff')),
    readOptional(join(d, 'feature_costs.arff'))
  ])
  let name = basename(d)
  try {
    const n = (parseYaml(description) as { scenario_id?: unknown }).scenario_id
    if (typeof n === 'string' && n !== '') name = n
  } catch {}
  return buildScenario(name, { description, algorithmRuns, featureValues, featureCosts, cv })
}

// ------------------------------------------------------------------ evaluation

export interface AslibFoldResult { fold: number, instances: number, sbs: number, vbs: number, selector: number, gap: number }

export interface AslibResult {
  scenario: string
  par10: { sbs: number, vbs: number, selector: number }
  /** mean over folds of (sel − vbs)/(sbs − vbs) (Run2Survive) */
  normalizedGap: number
  /** the same ratio of the PAR10 means pooled over all folds */
  normalizedGapPooled: number
  folds: AslibFoldResult[]
  backend: string
  trees: number
  target: 'log' | 'raw'
}

export interface AslibEvalOptions {
  backend: LearnerBackend
  nTrees?: number
  maxFeatures?: number
  minSamplesLeaf?: number
  sampleSize?: number
  seed?: number
  /**
   * regression target: raw PAR10 (default, as PerAlgorithmRegressor: a leaf's mean is then the
   * expected PAR10, which is what the choice minimizes) or log10 PAR10 (a geometric mean that
   * underweights the chance of a timeout; measured worse, docs/BENCHMARKS.md)
   */
  target?: 'log' | 'raw'
  /** evaluate only these folds (tests, quick runs) */
  onlyFolds?: number[]
  onProgress?: (done: number, total: number, what: string) => void
}

/** What each choice costs on one instance in the Run2Survive convention. */
export function par10Of (sc: AslibScenario, inst: number, alg: number, payFeatures: boolean): number {
  const y = sc.par10[inst][alg]
  if (!payFeatures) return y
  const t = y + sc.featureCost[inst]
  return t >= sc.cutoff ? 10 * sc.cutoff : t
}

export function solvable (sc: AslibScenario, inst: number): boolean {
  return sc.par10[inst].some(y => y < sc.cutoff)
}

/** The single best algorithm on some instances: lowest mean PAR10 (no feature cost). */
export function singleBest (sc: AslibScenario, instances: readonly number[]): number {
  let best = 0
  let bs = Infinity
  for (let a = 0; a < sc.algorithms.length; a++) {
    const m = instances.reduce((s, i) => s + sc.par10[i][a], 0) / Math.max(1, instances.length)
    if (m < bs) { bs = m; best = a }
  }
  return best
}

/** Column means over training rows (missing skipped; all-missing → 0), for imputation. */
function columnMeans (rows: Array<Array<number | null>>): number[] {
  const w = rows[0]?.length ?? 0
  const s = new Float64Array(w)
  const n = new Float64Array(w)
  for (const r of rows) for (let j = 0; j < w; j++) { const v = r[j]; if (v != null) { s[j] += v; n[j]++ } }
  return Array.from(s, (v, j) => (n[j] > 0 ? v / n[j] : 0))
}

export async function evaluateScenario (sc: AslibScenario, opts: AslibEvalOptions): Promise<AslibResult> {
  const nTrees = opts.nTrees ?? 16
  const folds = [...new Set(sc.fold)].sort((a, b) => a - b).filter(f => opts.onlyFolds == null || opts.onlyFolds.includes(f))
  const results: AslibFoldResult[] = []
  let tot = { sbs: 0, vbs: 0, sel: 0, n: 0 }
  const steps = folds.length * sc.algorithms.length
  let done = 0
  for (const f of folds) {
    const trainIdx = sc.instances.map((_, i) => i).filter(i => sc.fold[i] !== f)
    const testIdx = sc.instances.map((_, i) => i).filter(i => sc.fold[i] === f && solvable(sc, i))
    const means = columnMeans(trainIdx.map(i => sc.features[i]))
    const impute = (i: number): number[] => sc.features[i].map((v, j) => v ?? means[j])
    const Xtr = trainIdx.map(impute)
    const Xte = testIdx.map(impute)
    // one regressor per algorithm on PAR10 (timeouts at 10 × cutoff: the forest learns "this one
    // times out here" as a large value, as PerAlgorithmRegressor does)
    const pred: number[][] = testIdx.map(() => [])
    for (let a = 0; a < sc.algorithms.length; a++) {
      const y = trainIdx.map(i => (opts.target === 'log' ? Math.log10(Math.max(1e-3, sc.par10[i][a])) : sc.par10[i][a]))
      const forest = await opts.backend.train(Xtr, y, {
        nTrees, seed: (opts.seed ?? 1) * 1000 + f * 37 + a, maxFeatures: opts.maxFeatures, minSamplesLeaf: opts.minSamplesLeaf, sampleSize: opts.sampleSize
      })
      const p = Xte.length > 0 ? forest.predict(Xte).mean : []
      p.forEach((v, k) => { pred[k][a] = v })
      opts.onProgress?.(++done, steps, `fold ${f}, ${sc.algorithms[a]}`)
    }
    const sbsAlg = singleBest(sc, trainIdx)
    let sbs = 0
    let vbs = 0
    let sel = 0
    testIdx.forEach((i, k) => {
      const choice = pred[k].reduce((b, v, a) => (v < pred[k][b] ? a : b), 0)
      sbs += par10Of(sc, i, sbsAlg, false)
      vbs += Math.min(...sc.par10[i])
      sel += par10Of(sc, i, choice, true)
    })
    const n = testIdx.length
    if (n === 0) continue
    const r: AslibFoldResult = { fold: f, instances: n, sbs: sbs / n, vbs: vbs / n, selector: sel / n, gap: gap(sel / n, vbs / n, sbs / n) }
    results.push(r)
    tot = { sbs: tot.sbs + sbs, vbs: tot.vbs + vbs, sel: tot.sel + sel, n: tot.n + n }
  }
  if (tot.n === 0) throw new AslibError('E_ASLIB_EMPTY', `scenario ${sc.name}: no solvable test instance`)
  const par10 = { sbs: tot.sbs / tot.n, vbs: tot.vbs / tot.n, selector: tot.sel / tot.n }
  return {
    scenario: sc.name,
    par10,
    normalizedGap: results.reduce((s, r) => s + r.gap, 0) / results.length,
    normalizedGapPooled: gap(par10.selector, par10.vbs, par10.sbs),
    folds: results,
    backend: opts.backend.name,
    trees: nTrees,
    target: opts.target ?? 'raw'
  }
}

/** (sel − vbs)/(sbs − vbs); 0 when SBS already is the VBS and the selector matches it. */
export function gap (sel: number, vbs: number, sbs: number): number {
  const d = sbs - vbs
  if (d <= 1e-12) return sel - vbs <= 1e-12 ? 0 : 1
  return (sel - vbs) / d
}

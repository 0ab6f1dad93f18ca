// Pure helpers of the dashboard (no DOM): Prometheus text, counter rates, the speedup table.

/** Prometheus text → [{ name, labels, value }] (comments and malformed lines skipped). */
export function parseMetrics (text) {
  const out = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m == null) continue
    const labels = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => c === 'n' ? '\n' : c)
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

/** Sum of a family's samples whose labels match `where` (a function of the labels, optional). */
export function sumOf (samples, name, where) {
  let s = 0
  let found = false
  for (const x of samples) {
    if (x.name !== name || (where != null && !where(x.labels))) continue
    if (Number.isFinite(x.value)) s += x.value
    found = true
  }
  return found ? s : undefined
}

/** Per-second rate between two polls of a counter; a restart (counter went down) counts from 0. */
export function rate (prev, next, seconds) {
  if (prev == null || next == null || !(seconds > 0)) return null
  return (next >= prev ? next - prev : next) / seconds
}

function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** The models named in records: [{ id, name, count }], most records first. */
export function modelsOf (records) {
  const by = new Map()
  for (const r of records) {
    const m = r.body.model
    const e = by.get(m.id) ?? { id: m.id, name: m.name, count: 0 }
    e.count++
    by.set(m.id, e)
  }
  return [...by.values()].sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1))
}

/** Records per author: [{ author, count }], most first. */
export function authorCounts (records) {
  const by = new Map()
  for (const r of records) by.set(r.author, (by.get(r.author) ?? 0) + 1)
  return [...by.entries()].map(([author, count]) => ({ author, count })).sort((a, b) => b.count - a.count || (a.author < b.author ? -1 : 1))
}

/**
 * Speedup of each method over the baseline for one model, by workload family. Within one
 * hardware and family, the ratio of median total tokens/s (workloads of a family differ in
 * size, so tokens/s compares them better than wall time); then the median over hardware.
 * → { families, methods, cells: Map('family\u0000method' → { speedup, n }) }
 */
export function speedupTable (records, modelId, baseline = 'baseline') {
  const groups = new Map()
  for (const r of records) {
    const b = r.body
    if (b.model.id !== modelId || !b.result.ok || !(b.result.totalTokensPerSecond > 0)) continue
    const key = `${b.hardware.id}\u0000${b.workload.family}`
    const g = groups.get(key) ?? { family: b.workload.family, byMethod: new Map() }
    const list = g.byMethod.get(b.method.id) ?? []
    list.push(b.result.totalTokensPerSecond)
    g.byMethod.set(b.method.id, list)
    groups.set(key, g)
  }
  const ratios = new Map()
  for (const g of groups.values()) {
    const base = g.byMethod.get(baseline)
    if (base == null) continue
    const b = median(base)
    for (const [method, tps] of g.byMethod) {
      const k = `${g.family}\u0000${method}`
      const list = ratios.get(k) ?? []
      list.push(median(tps) / b)
      ratios.set(k, list)
    }
  }
  const cells = new Map()
  const families = new Set()
  const methods = new Set()
  for (const [k, list] of ratios) {
    const [family, method] = k.split('\u0000')
    families.add(family)
    methods.add(method)
    cells.set(k, { speedup: median(list), n: list.length })
  }
  const order = [...methods].sort((a, b) => a === baseline ? -1 : b === baseline ? 1 : a < b ? -1 : 1)
  return { families: [...families].sort(), methods: order, cells }
}

/** Cell colour of a speedup: green above 1, red below, white at 1 (log scale, saturating at 2x). */
export function speedupColor (s) {
  const t = Math.max(-1, Math.min(1, Math.log2(s)))
  const a = Math.abs(t) * 0.75
  return t >= 0 ? `rgba(46, 160, 67, ${a.toFixed(3)})` : `rgba(207, 34, 46, ${a.toFixed(3)})`
}

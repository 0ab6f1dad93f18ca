import type { AuthorTrust, ClaimIndex } from './trust.js'

/**
 * Which cells should this peer re-measure itself (pure)? Cells other authors claimed on this
 * peer's own hardware that it has not measured yet, preferring claims that matter most:
 * - authors with more influence (weight) and more claimed cells (a wrong author with many
 *   claims misleads more choices);
 * - authors not yet proven (a check decides whether their weight grows or drops to 0);
 * - claims that make a method the best of its task (that claim is what a choice follows).
 */
export interface SpotCheckCell {
  modelId: string
  workload: string
  method: string
  /** authors whose claims this check would test */
  authors: string[]
  score: number
}

export function pickSpotChecks (index: ClaimIndex, self: string, hardwareId: string, trust: ReadonlyMap<string, AuthorTrust>, k = 8): SpotCheckCell[] {
  // the best claimed method per task (by the claimants' raw medians): claims that decide a choice
  const bestOfTask = new Map<string, { method: string, value: number }>()
  for (const [key, c] of index.exact) {
    const info = index.cellInfo.get(key)
    if (info == null || info.hardwareId !== hardwareId) continue
    for (const vs of c.byAuthor.values()) {
      const v = vs.reduce((s, x) => s + x, 0) / vs.length
      const b = bestOfTask.get(info.task)
      if (b == null || v > b.value) bestOfTask.set(info.task, { method: info.method, value: v })
    }
  }
  const mine = index.authorCells.get(self) ?? new Set<string>()
  const out: SpotCheckCell[] = []
  for (const [key, c] of index.exact) {
    const info = index.cellInfo.get(key)
    // measured here already (failed runs included: a method that fails here is not re-tried forever)
    if (info == null || info.hardwareId !== hardwareId || mine.has(key)) continue
    let score = 0
    const authors: string[] = []
    for (const author of c.byAuthor.keys()) {
      const t = trust.get(author)
      if (t?.status === 'distrusted' || t?.status === 'equivocator') continue
      const weight = t?.weight ?? 0.01
      const reach = Math.log2(2 + (index.authorCells.get(author)?.size ?? 0))
      const unproven = t == null || t.status === 'unproven' ? 2 : 1
      score += (weight + 0.01) * reach * unproven
      authors.push(author)
    }
    if (authors.length === 0) continue
    if (bestOfTask.get(info.task)?.method === info.method) score *= 2
    out.push({ modelId: info.modelId, workload: info.workload, method: info.method, authors: authors.sort(), score })
  }
  out.sort((a, b) => b.score - a.score || (a.method + a.workload < b.method + b.workload ? -1 : 1))
  return out.slice(0, k)
}

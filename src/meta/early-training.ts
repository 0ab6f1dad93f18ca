/**
 * When a young swarm trains before the periodic threshold (issue #17, item 7; pure). While the
 * model is young (none yet, or trained on fewer than `youngRows` rows), a record triggers a
 * training when
 * - its author is the second (or later) distinct author seen since start: the swarm's data
 *   has started to mix, and a zero-shot answer needs other machines' records; or
 * - the records that arrived since start reached the next mark: `firstRecords`, then doubling
 *   (so a burst of records costs a logarithmic number of trainings).
 * `firstRecords: 0` turns early training off.
 */
export interface EarlyTrainingState {
  authors: Set<string>
  arrived: number
  nextMark: number
}

export function createEarlyTrainingState (firstRecords: number): EarlyTrainingState {
  return { authors: new Set(), arrived: 0, nextMark: firstRecords }
}

export function shouldTrainEarly (s: EarlyTrainingState, author: string, young: boolean, firstRecords: number): boolean {
  if (firstRecords <= 0) return false
  s.arrived++
  const newAuthor = !s.authors.has(author)
  if (newAuthor) s.authors.add(author)
  if (!young) return false
  if (newAuthor && s.authors.size >= 2) return true
  if (s.arrived >= s.nextMark) {
    s.nextMark = Math.max(s.nextMark, s.arrived) * 2
    return true
  }
  return false
}

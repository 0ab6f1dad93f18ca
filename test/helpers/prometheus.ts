/**
 * A strict reader of the Prometheus text format (0.0.4): every sample belongs to a family
 * announced by `# HELP` and `# TYPE` before it, names and labels are well formed, values parse,
 * a family appears once. Throws on the first line that breaks a rule.
 */
export interface Family { name: string, type: string, help: string, samples: Array<{ name: string, labels: Record<string, string>, value: number }> }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] }

function parseLabels (text: string | undefined, line: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (text == null || text === '') return out
  for (const part of text.match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
    const m = LABEL.exec(part)
    if (m == null) throw new Error(`bad label ${part} in: ${line}`)
    out[m[1]] = m[2]
  }
  if (text.replace(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g, '').replace(/,/g, '').trim() !== '') throw new Error(`bad labels in: ${line}`)
  return out
}

export function parsePrometheus (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  let current: Family | undefined
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) {
      const [name, ...help] = line.slice(7).split(' ')
      if (!NAME.test(name)) throw new Error(`bad family name: ${line}`)
      if (families.has(name)) throw new Error(`family ${name} appears twice`)
      current = { name, type: '', help: help.join(' '), samples: [] }
      families.set(name, current)
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ')
      if (current?.name !== name) throw new Error(`TYPE without HELP: ${line}`)
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`bad type: ${line}`)
      current.type = type
      continue
    }
    if (line.startsWith('#')) throw new Error(`unknown comment: ${line}`)
    const m = SAMPLE.exec(line)
    if (m == null) throw new Error(`bad sample line: ${line}`)
    if (current == null || current.type === '') throw new Error(`sample before HELP/TYPE: ${line}`)
    const suffixes = SUFFIXES[current.type] ?? ['']
    if (!suffixes.some(s => m[1] === current!.name + s)) throw new Error(`sample ${m[1]} outside its family ${current.name}`)
    // Prometheus parses values as Go's ParseFloat does: NaN and Inf in any case (prom-client writes `Nan`)
    const raw = m[4].toLowerCase()
    const value = raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : raw === 'nan' ? NaN : Number(m[4])
    if (raw !== 'nan' && Number.isNaN(value)) throw new Error(`bad value: ${line}`)
    current.samples.push({ name: m[1], labels: parseLabels(m[3], line), value })
  }
  for (const f of families.values()) if (f.type === '') throw new Error(`family ${f.name} has no TYPE`)
  return families
}

import { describe, expect, it } from 'vitest'
import { Counter, Histogram, Registry } from 'prom-client'
import { parsePrometheus } from '../../helpers/prometheus.js'

// The strict reader guards three integration tests' /metrics assertions: it must accept what
// prom-client writes and refuse each rule it claims to enforce, or those tests prove nothing.
describe('parsePrometheus', () => {
  it('reads what prom-client writes, labels and histogram suffixes included', async () => {
    const registry = new Registry()
    const c = new Counter({ name: 'demo_total', help: 'a counter', labelNames: ['code'], registers: [registry] })
    c.inc({ code: 'E_X' }, 3)
    const h = new Histogram({ name: 'demo_seconds', help: 'a histogram', buckets: [0.1, 1], registers: [registry] })
    h.observe(0.5)
    const families = parsePrometheus(await registry.metrics())
    expect(families.get('demo_total')?.type).toBe('counter')
    expect(families.get('demo_total')?.samples).toEqual([{ name: 'demo_total', labels: { code: 'E_X' }, value: 3 }])
    const hist = families.get('demo_seconds')!
    expect(hist.samples.find(s => s.name === 'demo_seconds_bucket' && s.labels.le === '1')?.value).toBe(1)
    expect(hist.samples.find(s => s.name === 'demo_seconds_bucket' && s.labels.le === '+Inf')?.value).toBe(1)
    expect(hist.samples.find(s => s.name === 'demo_seconds_count')?.value).toBe(1)
  })

  it('parses NaN and infinities as Prometheus does, and escaped quotes in label values', () => {
    const text = '# HELP g a gauge\n# TYPE g gauge\ng{a="x\\"y"} Nan\ng{a="b"} -Inf\n'
    const s = parsePrometheus(text).get('g')!.samples
    expect(Number.isNaN(s[0].value)).toBe(true)
    expect(s[0].labels.a).toBe('x\\"y')
    expect(s[1].value).toBe(-Infinity)
  })

  it.each([
    ['a sample before its HELP/TYPE', 'x 1\n'],
    ['a family announced twice', '# HELP x a\n# TYPE x gauge\n# HELP x a\n# TYPE x gauge\n'],
    ['TYPE without HELP', '# TYPE x gauge\n'],
    ['an unknown type', '# HELP x a\n# TYPE x thing\n'],
    ['a sample outside its family', '# HELP x a\n# TYPE x gauge\ny 1\n'],
    ['a value that does not parse', '# HELP x a\n# TYPE x gauge\nx one\n'],
    ['malformed labels', '# HELP x a\n# TYPE x gauge\nx{a=b} 1\n'],
    ['an unknown comment', '# HELP x a\n# TYPE x gauge\n# EOF\n'],
    ['a family with no TYPE', '# HELP x a\n']
  ])('refuses %s', (_what, text) => {
    expect(() => parsePrometheus(text)).toThrow()
  })
})

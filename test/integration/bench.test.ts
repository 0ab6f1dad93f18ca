import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLlamaEngine } from '../../src/engine/llama-engine.js'
import { ensureEmbeddedModel } from '../../src/engine/models.js'
import { getMethod } from '../../src/engine/methods.js'
import type { Engine, Method, ModelSpec } from '../../src/engine/types.js'
import { createRecordStore } from '../../src/store/record-store.js'
import { toWire, verifyWire, type SignedRecord } from '../../src/records/index.js'
import { runBenchmark, runWorkload } from '../../src/bench/runner.js'
import { generateWorkload } from '../../src/bench/workloads.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * The benchmark end to end with the real llama.cpp engine and the embedded tiny model: CLI
 * standalone → signed records in a real LevelDB store; the lossless check; skip, bad model and
 * timeout paths. Needs `npm run build` (the CLI runs from dist/).
 */
let dir: string
let engine: Engine
let tiny: ModelSpec

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-'))
  tiny = await ensureEmbeddedModel('tiny', join(dir, 'node'))
  engine = await createLlamaEngine({ gpu: 'cpu', threads: 1 })
})

afterAll(async () => {
  await engine?.close()
  rmSync(dir, { recursive: true, force: true })
})

function cli (args: string[]): { status: number | null, stdout: string, stderr: string } {
  // spawnSync would block the event loop, and with it a daemon running in this process
  const r = spawnSync(process.execPath, [cliPath(), ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SWARMTUNE_API_PORT: '0' } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('swarmtune bench (standalone, real engine, tiny model)', () => {
  it('benches 2 methods × 2 workloads into signed records in the node store', async () => {
    const dataDir = join(dir, 'node')
    const r = cli(['bench', '--data-dir', dataDir, '--model', 'tiny', '--scale', 'tiny', '--methods', 'baseline,prefix-cache', '--workloads', 'chat,docqa', '--repeats', '3', '--json'])
    expect(r.stderr).not.toMatch(/swarmtune: /)
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Array<Record<string, any>>
    expect(out.map(o => `${o.method}/${o.workload.split('-')[0]}`)).toEqual(['baseline/chat', 'prefix-cache/chat', 'baseline/docqa', 'prefix-cache/docqa'])
    for (const o of out) {
      expect(o.ok).toBe(true)
      expect(o.id).toMatch(/^[0-9a-f]{64}$/)
      expect(o.outputTokensPerSecond).toBeGreaterThan(0)
      expect(o.wallMs).toBeGreaterThan(0)
      expect(o.ttftMsP50).toBeGreaterThan(0)
    }
    // the lossless check ran and prefix caching matched the baseline's greedy tokens
    expect(out.filter(o => o.method === 'prefix-cache').map(o => o.diverged)).toEqual([false, false])

    const store = createRecordStore({ path: join(dataDir, 'store'), maxRecords: 1000 })
    await store.start()
    try {
      const records: SignedRecord[] = []
      for await (const rec of store.all()) records.push(rec)
      expect(records.map(x => x.id).sort()).toEqual(out.map(o => o.id).sort())
      const authors = new Set(records.map(x => x.body.author))
      expect(authors.size).toBe(1)
      expect(records.map(x => x.body.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4])
      for (const rec of records) {
        const again = await verifyWire(toWire(rec)) // signature and schema hold
        expect(again.id).toBe(rec.id)
        const b = rec.body
        expect(b.source).toBe('benchmark')
        expect(b.model).toMatchObject({ name: 'tiny', architecture: 'llama', fileType: 'F32' })
        expect(b.model.params).toBeGreaterThan(1e6)
        expect(b.hardware.backend).toBe('cpu')
        expect(b.hardware.threads).toBe(1)
        expect(b.engine.version).toContain('node-llama-cpp@3.21.1')
        const res = b.result
        expect(res.repeats).toBe(3)
        // the engine may prepend a BOS token per request, the features count the prompt text only
        expect(res.promptTokens).toBeGreaterThanOrEqual(b.workload.features.totalPromptTokens)
        expect(res.promptTokens).toBeLessThanOrEqual(b.workload.features.totalPromptTokens + b.workload.features.requests)
        expect(res.outputTokens).toBeGreaterThan(0)
        expect(res.outputTokens).toBeLessThanOrEqual(b.workload.features.requests * b.workload.features.outputTokensMean)
        expect(res.ttftMsP50).toBeLessThanOrEqual(res.ttftMsP95)
        expect(res.ttftMsP95).toBeLessThanOrEqual(res.wallMs)
        expect(res.outputTokensPerSecond).toBeLessThan(res.totalTokensPerSecond)
        expect(res.peakRssMiB).toBeGreaterThan(10)
        expect(b.workload.features.reusablePrefixRatio).toBeGreaterThan(0.3) // chat and docqa share prefixes
      }
    } finally {
      await store.stop()
    }
  })

  it('fails clearly, naming the file, on a bad model path', () => {
    const cfg = join(dir, 'bad-model.json')
    const missing = join(dir, 'no-such-model.gguf')
    writeFileSync(cfg, JSON.stringify({ engine: { models: [{ name: 'broken', path: missing }] } }))
    const r = cli(['bench', '--data-dir', join(dir, 'bad'), '--config', cfg, '--model', 'broken', '--methods', 'baseline', '--workloads', 'chat', '--scale', 'tiny'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(missing)
    expect(r.stderr).toMatch(/\[E_MODEL_[A-Z_]+\]/)
  })
})

describe('runner with the real engine', () => {
  it('prefix caching gives the baseline greedy tokens, token for token', async () => {
    const w = generateWorkload('chat', { requests: 4, concurrency: 1 }, 'tiny')
    const outputs: number[][][] = []
    for (const m of [getMethod('baseline'), getMethod('prefix-cache')]) {
      const s = await engine.open(tiny, m)
      try {
        // twice on one session: without a reset the second run reuses the cache left by the first
        const cold = (await runWorkload(s, w, 30_000)).outputs
        const warm = (await runWorkload(s, w, 30_000)).outputs
        expect(warm).toEqual(cold)
        outputs.push(cold)
      } finally {
        await s.close()
      }
    }
    expect(outputs[0].every(o => o.length > 0)).toBe(true)
    expect(outputs[1]).toEqual(outputs[0])
  })

  it('records an unsupported method as skipped with its reason', async () => {
    const noDraft: ModelSpec = { name: tiny.name, path: tiny.path, q8Path: tiny.q8Path }
    const res = await runBenchmark({
      engine, model: noDraft, methods: [getMethod('baseline'), getMethod('spec-draft')], workloads: [generateWorkload('classify', {}, 'tiny')], repeats: 1
    })
    const skipped = res.find(r => r.method === 'spec-draft')!
    expect(skipped.skipped).toMatch(/draft/)
    expect(skipped.body.result.ok).toBe(false)
    expect(skipped.body.result.error).toMatch(/^E_UNSUPPORTED: .*draft/)
    expect(res.find(r => r.method === 'baseline')!.body.result.ok).toBe(true)
  })

  it('a run past its timeout becomes a failed record', async () => {
    const slow: Method = getMethod('baseline')
    const w = generateWorkload('codeedit', { maxTokens: 200 }, 'tiny')
    const res = await runBenchmark({ engine, model: tiny, methods: [slow], workloads: [w], repeats: 1, timeoutMs: 5 })
    expect(res).toHaveLength(1)
    expect(res[0].body.result.ok).toBe(false)
    expect(res[0].body.result.error).toMatch(/^E_TIMEOUT: /)
    // the engine is still usable afterwards
    const ok = await runBenchmark({ engine, model: tiny, methods: [slow], workloads: [generateWorkload('classify', {}, 'tiny')], repeats: 1 })
    expect(ok[0].body.result.ok).toBe(true)
  })
  it('--quick runs each cell once (given flags win), and --help says how long a full run takes (issue #20)', () => {
    const help = cli(['bench', '--help'])
    expect(help.stdout).toContain('about 12')
    expect(help.stdout).toContain('--quick')
    const r = cli(['bench', '--quick', '--data-dir', join(dir, 'quick'), '--methods', 'baseline', '--workloads', 'classify', '--json'])
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Array<Record<string, any>>
    expect(out).toHaveLength(1)
    expect(out[0]).toMatchObject({ method: 'baseline', ok: true, repeats: 1 })
    // given flags win over --quick's choices
    const three = JSON.parse(cli(['bench', '--quick', '--repeats', '2', '--data-dir', join(dir, 'quick'), '--methods', 'baseline', '--workloads', 'classify', '--json']).stdout) as Array<Record<string, any>>
    expect(three[0].repeats).toBe(2)
  })
  it('Ctrl-C during a run stores and prints what was measured (issue #20: llama.cpp had reset SIGINT)', async () => {
    const p = spawn(process.execPath, [cliPath(), 'bench', '--quick', '--data-dir', join(dir, 'interrupted')], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let sent = false
    p.stdout!.on('data', (b: Buffer) => { stdout += b.toString() })
    // the first finished run: the engine is loaded and measuring
    p.stderr!.on('data', (b: Buffer) => { if (!sent && /bench [1-9]\d*\/\d+/.test(b.toString())) { sent = true; p.kill('SIGINT') } })
    const code = await new Promise(resolve => { p.once('exit', (c, sig) => { resolve(c ?? sig) }) })
    expect(sent).toBe(true)
    expect(code).toBe(0)
    expect(stdout).toMatch(/\d+ results stored as signed records/)
  }, 120_000)
})

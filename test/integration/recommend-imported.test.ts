import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { apiGet } from '../../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { cliPath } from '../../src/util/paths.js'
import { flashAttnRows, llamaBenchRow } from '../helpers/llama-bench-rows.js'
import { llamaBenchRowToBody } from '../../src/bench/llama-bench-import.js'
import type { RecommendResponse } from '../../src/net/recommend.js'

/*
 * Issue 16 item 4 as a user meets it: real llama-bench output of one machine where flash attention
 * OFF is 1.3x faster for prefill (and ON 1.1x faster for decode) is imported with the real CLI
 * into a real daemon (separate process, real LevelDB) through its API, the daemon trains on it, and
 * `swarmtune recommend` for that machine and model ranks the imported settings, not only the
 * built-in catalog: fa-off first for a prefill workload, fa-on first for a decode workload, each
 * flagged `runnable: false` (this peer's engine runs only its catalog). Build first: `npx tsc -p .`.
 */
const run = promisify(execFile)

let root: string
let daemon: DaemonProcess | undefined

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-rec-import-'))
  const file = join(root, 'bench.jsonl')
  writeFileSync(file, flashAttnRows().map(r => JSON.stringify(r)).join('\n') + '\n')
  daemon = await spawnDaemon({ dataDir: join(root, 'd'), port: 0, apiPort: 0, env: { SWARMTUNE__meta__trees: '10', SWARMTUNE__meta__retrainIntervalMs: '2000' }, timeoutMs: 60_000 })
  const { stdout } = await run(process.execPath, [cliPath(), 'import', '--api', daemon.info.api, '--format', 'llama-bench', '--json', file], { timeout: 60_000 })
  expect(JSON.parse(stdout)).toMatchObject({ imported: 16, errors: [] })
  await waitFor('the daemon to train on the whole imported history', async () => (await apiGet<{ snapshot: { rows: number } | null }>(daemon!.info.api, '/status')).snapshot?.rows === 16, 120_000, 250)
}, 240_000)

afterAll(async () => {
  await daemon?.stop(5000)
  if (root != null) rmSync(root, { recursive: true, force: true })
})

async function recommend (nPrompt: number, nGen: number): Promise<{ res: RecommendResponse, fa0: string, fa1: string }> {
  const body0 = llamaBenchRowToBody(llamaBenchRow(false, nPrompt, nGen, 1, 0) as never)
  const body1 = llamaBenchRowToBody(llamaBenchRow(true, nPrompt, nGen, 1, 0) as never)
  const hw = body0.hardware
  // no workload name: the daemon matches the features to the nearest imported shape
  const task = join(root, `task-${nPrompt}-${nGen}.json`)
  writeFileSync(task, JSON.stringify({
    model: body0.model.id,
    workload: { features: body0.workload.features },
    hardware: { id: hw.id, cpuModel: hw.cpuModel, cores: hw.cores, threads: hw.threads, ramMiB: hw.ramMiB, gpus: hw.gpus, backend: hw.backend },
    objective: 'throughput'
  }))
  const { stdout } = await run(process.execPath, [cliPath(), 'recommend', '--peer', loopbackAddr(daemon!.info), '--task', task, '--json'], { timeout: 60_000 })
  return { res: JSON.parse(stdout) as RecommendResponse, fa0: body0.method.id, fa1: body1.method.id }
}

describe('recommend ranks the settings the history holds for the model', () => {
  it('prefill: the imported fa-off setting first, flagged as advice this peer cannot run', async () => {
    const { res, fa0, fa1 } = await recommend(512, 0)
    expect(fa0).toMatch(/^llama-bench:.*-fa0-/)
    expect(res.v).toBe(2)
    expect(res.source).not.toBe('cold-start')
    expect(res.ranking[0]).toMatchObject({ method: fa0, runnable: false })
    const methods = res.ranking.map(r => r.method)
    expect(methods.indexOf(fa1)).toBeGreaterThan(0)
    // the built-in catalog is still ranked, and runnable (no flag)
    const catalog = res.ranking.filter(r => !r.method.startsWith('llama-bench:'))
    expect(catalog.length).toBeGreaterThan(0)
    for (const r of catalog) expect(r.runnable).toBeUndefined()
    for (const r of res.ranking.filter(x => x.method.startsWith('llama-bench:'))) expect(r.runnable).toBe(false)
  }, 120_000)

  it('decode: the fa-on setting first (the per-workload best of the matched shape, not one global order)', async () => {
    const { res, fa1 } = await recommend(0, 128)
    expect(res.ranking[0]).toMatchObject({ method: fa1, runnable: false })
  }, 120_000)
})

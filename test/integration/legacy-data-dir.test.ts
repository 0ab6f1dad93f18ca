import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { apiGet } from '../../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { cliPath } from '../../src/util/paths.js'
import { flashAttnRows, llamaBenchRow } from '../helpers/llama-bench-rows.js'
import { llamaBenchRowToBody } from '../../src/bench/llama-bench-import.js'
import { createRecord } from '../../src/records/index.js'
import { createRecordStore } from '../../src/store/record-store.js'
import type { RecommendResponse } from '../../src/net/recommend.js'
import { importLlamaBench as importBefore16 } from '../helpers/llama-bench-import-before-16.js'

/*
 * Issue #16 item 6, "existing data dirs migrate on start": a data dir whose store holds records
 * of the llama-bench importer as released before #16 (written here with that importer, signed
 * and stored with the project's own code, real LevelDB), then a daemon of this release started
 * on it through the CLI. It trains on those records as the current importer would have written
 * them, and `swarmtune recommend` for the logical model (the id a current import gives) ranks the
 * settings under their current ids; the stored records themselves are unchanged (signed bytes).
 * Build first: `npx tsc -p .`.
 */
const run = promisify(execFile)

let root: string
let dataDir: string
let daemon: DaemonProcess | undefined
let oldMethodIds: string[]

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-legacy-dir-'))
  dataDir = join(root, 'd')
  // the data dir as the previous release left it: imported records of the old importer
  const { bodies, errors } = importBefore16(flashAttnRows().map(r => JSON.stringify(r)).join('\n'))
  expect(errors).toEqual([])
  oldMethodIds = bodies.map(b => b.method.id)
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const store = createRecordStore({ path: join(dataDir, 'store'), maxRecords: 1_000_000, dataDir })
  await store.start()
  let seq = 0
  for (const b of bodies) await store.put(await createRecord(key, author, ++seq, b))
  await store.stop()

  daemon = await spawnDaemon({ dataDir, port: 0, apiPort: 0, env: { SWARMTUNE__meta__trees: '10', SWARMTUNE__meta__retrainIntervalMs: '2000' }, timeoutMs: 60_000 })
  await waitFor('the daemon to train on the old history', async () => (await apiGet<{ snapshot: { rows: number } | null }>(daemon!.info.api, '/status')).snapshot?.rows === 16, 120_000, 250)
}, 240_000)

afterAll(async () => {
  await daemon?.stop(5000)
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('a data dir of the previous release', () => {
  it('keeps its records as signed, and recommend ranks them under the current model and method ids', async () => {
    const stored = await apiGet<{ records: Array<{ body: { method: { id: string } } }> }>(daemon!.info.api, '/records?limit=1000')
    expect(stored.records.map(r => r.body.method.id).sort()).toEqual([...oldMethodIds].sort())

    const fa0 = llamaBenchRowToBody(llamaBenchRow(false, 512, 0, 1, 0) as never)
    const fa1 = llamaBenchRowToBody(llamaBenchRow(true, 512, 0, 1, 0) as never)
    expect(oldMethodIds).not.toContain(fa0.method.id)
    const hw = fa0.hardware
    const task = join(root, 'task.json')
    writeFileSync(task, JSON.stringify({
      model: fa0.model.id,
      workload: { features: fa0.workload.features },
      hardware: { id: hw.id, cpuModel: hw.cpuModel, cores: hw.cores, threads: hw.threads, ramMiB: hw.ramMiB, gpus: hw.gpus, backend: hw.backend },
      objective: 'throughput'
    }))
    const { stdout } = await run(process.execPath, [cliPath(), 'recommend', '--peer', loopbackAddr(daemon!.info), '--task', task, '--json'], { timeout: 60_000 })
    const res = JSON.parse(stdout) as RecommendResponse
    expect(res.source).not.toBe('cold-start')
    expect(res.ranking[0]).toMatchObject({ method: fa0.method.id, runnable: false })
    const methods = res.ranking.map(r => r.method)
    expect(methods).toContain(fa1.method.id)
    for (const old of oldMethodIds) expect(methods).not.toContain(old)
  }, 120_000)
})

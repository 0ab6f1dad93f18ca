import { describe, it, expect, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cliPath, packageRoot } from '../../src/util/paths.js'
import { decodeEnvelope, parseBody } from '../../src/records/codec.js'

/*
 * Issue #16: `swarmtune import --format csv` through the real CLI into empty data dirs (no daemon),
 * with small tables made for this test (test/fixtures/table-*-small.csv), shaped like the
 * published LLM-Inference-Bench tables and their defects. Needs `npm run build`.
 */
const run = promisify(execFile)
const root = mkdtempSync(join(tmpdir(), 'swarmtune-import-csv-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })
const fixture = (name: string): string => join(packageRoot(), 'test', 'fixtures', name)

async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await run(process.execPath, [cliPath(), ...args], { cwd: root, timeout: 60_000, env: { ...process.env, XDG_DATA_HOME: join(root, 'xdg') } })
    .then(r => ({ code: 0, stdout: r.stdout, stderr: r.stderr }), (e: { code: number, stdout: string, stderr: string }) => e)
}

interface Report { imported: number, duplicates: number, errors: Array<{ line: number, code: string, message: string }>, errorCounts: Record<string, number> }
interface Exported { body: { source: string, model: { name: string }, method: { id: string }, hardware: { cpuModel: string, cores: number, ramMiB: number, gpus: Array<{ name: string, vramMiB: number }> }, workload: { name: string } } }

async function exported (dataDir: string): Promise<Exported[]> {
  const r = await cli(['export', '--data-dir', dataDir])
  expect(r.code).toBe(0)
  // export writes signed records ({id, author, seq, wire}): the body is inside the wire bytes
  return r.stdout.trim().split('\n').filter(l => l !== '').map(l => {
    const wire = Buffer.from((JSON.parse(l) as { wire: string }).wire, 'base64')
    return { body: parseBody(decodeEnvelope(wire).bytes) } as unknown as Exported
  })
}

describe('swarmtune import --format csv', () => {
  it('a preset: repairs the known unquoted comma, reports the bad row by its line, host facts reach the records; re-run is duplicates', async () => {
    const dataDir = join(root, 'quant')
    const args = ['import', '--format', 'csv', '--preset', 'llm-inference-bench-quantization', '--data-dir', dataDir, '--cpu', 'AMD EPYC 9654', '--cores', '96', '--ram-mib', '786432', '--gpu', 'Nvidia H100 GPU:81559', '--json', fixture('table-quantization-small.csv')]
    const first = await cli(args)
    expect(first.code).toBe(1) // one row failed
    const r = JSON.parse(first.stdout) as Report
    expect(r.imported).toBe(4)
    expect(r.duplicates).toBe(0)
    expect(r.errors).toEqual([{ line: 6, code: 'E_TABLE_VALUE', message: expect.stringContaining('throughput') }])
    expect(r.errorCounts).toEqual({ E_TABLE_VALUE: 1 })
    const records = await exported(dataDir)
    expect(records).toHaveLength(4)
    expect(records.every(x => x.body.source === 'import')).toBe(true)
    // the repaired row (line 2) kept both halves of its method
    expect(records.map(x => x.body.method.id)).toContain('table:vLLM-Weightfp8-KV-Cachefp8')
    const h100 = records.find(x => x.body.hardware.gpus[0].name === 'Nvidia H100 GPU')!
    expect(h100.body.hardware).toMatchObject({ cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 786432, gpus: [{ name: 'Nvidia H100 GPU', vramMiB: 81559 }] })
    expect(records.find(x => x.body.hardware.gpus[0].name === 'Nvidia A100 GPU')!.body.hardware.gpus[0].vramMiB).toBe(0)

    const again = await cli(args)
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout)).toMatchObject({ imported: 0, duplicates: 4, errorCounts: { E_TABLE_VALUE: 1 } })
    expect(await exported(dataDir)).toHaveLength(4)
  }, 120_000)

  it('a mapping file with synonyms; all rows good → exit 0; human output names the bad line', async () => {
    const dataDir = join(root, 'custom')
    const ok = join(root, 'custom-ok.csv')
    writeFileSync(ok, 'gpu,n,engine,llm,prompt,gen,bs,tok_s\nL40S,1,vLLM,Llama-2-7b,256,64,1,120.5\nL40S,1,TRT,Llama-2-7b,256,64,1,150.25\n')
    const good = await cli(['import', '--format', 'csv', '--map', fixture('table-custom-small.map.json'), '--data-dir', dataDir, '--json', ok])
    expect(good.stderr).toBe('')
    expect(good.code).toBe(0)
    expect(JSON.parse(good.stdout)).toMatchObject({ imported: 2, duplicates: 0, errors: [], errorCounts: {} })
    expect((await exported(dataDir)).map(x => x.body.method.id).sort()).toEqual(['table:TensorRT-LLM', 'table:vLLM'])

    const mixed = await cli(['import', '--format', 'csv', '--map', fixture('table-custom-small.map.json'), '--data-dir', dataDir, fixture('table-custom-small.csv')])
    expect(mixed.code).toBe(1)
    expect(mixed.stdout).toMatch(/imported 1 record \(2 already stored, skipped\)/)
    expect(mixed.stdout).toMatch(/line 5: E_TABLE_VALUE column "prompt"/)
  }, 120_000)

  it('usage errors exit 2: no mapping, an unknown preset, a mapping naming a missing column, --map without csv', async () => {
    const csv = fixture('table-custom-small.csv')
    const bad = join(root, 'bad.map.json')
    writeFileSync(bad, JSON.stringify({ hardware: 'gpu', model: 'llm', inputLength: 'prompt', throughput: 'nope', method: ['engine'] }))
    for (const [args, code] of [
      [['--format', 'csv'], 'E_USAGE'],
      [['--format', 'csv', '--preset', 'nope'], 'E_USAGE'],
      [['--format', 'csv', '--map', bad], 'E_TABLE_MAPPING'],
      [['--map', bad], 'E_USAGE']
    ] as Array<[string[], string]>) {
      const r = await cli(['import', ...args, '--data-dir', join(root, 'never'), csv])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(`[${code}]`)
    }
  }, 120_000)
})

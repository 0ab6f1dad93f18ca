import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath, packageRoot } from '../../src/util/paths.js'

/*
 * Issue #20 item 5: a history backed up and carried across as signed records, through the real
 * CLI: export from a data dir, import into an empty one and into a running daemon, export again.
 * Authors, seqs and signatures survive; a tampered line is refused on its own. Build first.
 */
const exec = promisify(execFile)
let root: string
let daemon: DaemonProcess | undefined

interface Line { id: string, author: string, seq: number, wire: string }
interface Report { imported: number, signed?: number, duplicates: number, errorCount: number, errors: Array<{ line: number, code: string }> }

async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cliPath(), ...args], { maxBuffer: 64 * 2 ** 20, timeout: 120_000, env: { ...process.env, SWARMTUNE_VERIFY_WORKERS: '0' } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

const lines = (file: string): Line[] => readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
const byId = (xs: Line[]): Line[] => [...xs].sort((a, b) => a.id.localeCompare(b.id))

beforeAll(() => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-transfer-'))
})

afterAll(async () => {
  await daemon?.stop()
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('history backup and transfer as signed records', () => {
  it('round-trips through an empty data dir, refusing tampered lines one by one', async () => {
    const bodies = join(root, 'bodies.jsonl')
    writeFileSync(bodies, (await cli(['synth', '--count', '12', '--seed', '3'])).stdout)
    const first = await cli(['import', '--data-dir', join(root, 'a'), '--json', bodies])
    expect(first.code).toBe(0)
    expect((JSON.parse(first.stdout) as Report).imported).toBe(12)

    const backup = join(root, 'a.jsonl')
    expect((await cli(['export', '--data-dir', join(root, 'a'), '--out', backup])).code).toBe(0)
    const exported = lines(backup)
    expect(exported).toHaveLength(12)
    const author = exported[0].author
    expect(new Set(exported.map(l => l.seq))).toEqual(new Set(Array.from({ length: 12 }, (_, i) => i + 1)))

    // a signature with one byte flipped, and an entry with no signature at all
    const bad = Buffer.from(exported[0].wire, 'base64')
    bad[5] ^= 0xff
    const withBad = join(root, 'with-bad.jsonl')
    writeFileSync(withBad, [...exported.map(l => JSON.stringify(l)), JSON.stringify({ wire: bad.toString('base64') }), JSON.stringify({ id: 'x', author, seq: 99, body: {} })].join('\n') + '\n')

    const restored = await cli(['import', '--data-dir', join(root, 'b'), '--json', withBad])
    expect(restored.code).toBe(1)
    const report = JSON.parse(restored.stdout) as Report
    expect(report).toMatchObject({ imported: 12, signed: 12, errorCount: 2 })
    expect(report.errors.map(e => [e.line, e.code])).toEqual([[13, 'E_BAD_SIGNATURE'], [14, 'E_UNSIGNED_EXPORT']])

    const again = join(root, 'b.jsonl')
    expect((await cli(['export', '--data-dir', join(root, 'b'), '--out', again])).code).toBe(0)
    // the same records, byte for byte: same authors, seqs and signatures, nothing re-signed
    expect(byId(lines(again))).toEqual(byId(exported))

    const twice = JSON.parse((await cli(['import', '--data-dir', join(root, 'b'), '--json', backup])).stdout) as Report
    expect(twice).toMatchObject({ imported: 0, duplicates: 12 })
  })

  it('imports a backup, history --json and a peer\'s fixture into a running daemon as they are', async () => {
    daemon = await spawnDaemon({ dataDir: join(root, 'c'), port: 0, apiPort: 0, timeoutMs: 60_000 })
    const api = daemon.info.api
    const backup = lines(join(root, 'a.jsonl'))
    const viaApi = await cli(['import', '--api', api, '--json', join(root, 'a.jsonl')])
    expect(JSON.parse(viaApi.stdout)).toMatchObject({ imported: 12, signed: 12, errorCount: 0 })

    const fixture = join(packageRoot(), 'test', 'fixtures', 'history-amd-epyc-2c-cpu.jsonl')
    const fx = JSON.parse((await cli(['import', '--api', api, '--json', fixture])).stdout) as Report
    expect(fx).toMatchObject({ imported: lines(fixture).length, errorCount: 0 })

    const hist = await cli(['history', '--api', api, '--json', '--limit', '1000'])
    const entries = JSON.parse(hist.stdout) as Line[]
    expect(entries).toHaveLength(12 + lines(fixture).length)
    const mine = entries.filter(e => e.author === backup[0].author).map(e => ({ id: e.id, author: e.author, seq: e.seq, wire: e.wire }))
    expect(byId(mine)).toEqual(byId(backup))

    // history --json (one JSON array) is itself a backup: into another empty data dir
    const histFile = join(root, 'history.json')
    writeFileSync(histFile, hist.stdout)
    const d = JSON.parse((await cli(['import', '--data-dir', join(root, 'd'), '--json', histFile])).stdout) as Report
    expect(d).toMatchObject({ imported: entries.length, signed: entries.length, errorCount: 0 })
  })
})

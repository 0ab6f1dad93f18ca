import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { envOverrides, loadConfig } from '../../../src/node/config.js'
import { DEFAULT_GUARD } from '../../../src/net/guard.js'
import { DEFAULT_TRUST_PARAMS } from '../../../src/trust/trust.js'
import { DEFAULT_TRUST_EVALUATE_INTERVAL_MS } from '../../../src/trust/service.js'
import { DEFAULT_COLD_OWN_RECORDS } from '../../../src/vote/advisor.js'
import { DEFAULT_WRITE_BUFFER_MB } from '../../../src/store/record-store.js'

let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-config-')) })
afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

function codeAndMessage (fn: () => unknown): [string, string] | undefined {
  try { fn() } catch (err: any) { return [err.code, err.message] }
  return undefined
}

describe('config', () => {
  it('loads the embedded defaults with an absolute data dir', () => {
    const cfg = loadConfig({ env: {} })
    expect(cfg.api).toEqual({ host: '127.0.0.1', port: 4100 })
    expect(cfg.net.bootstrap).toEqual([])
    expect(cfg.dataDir.startsWith('/')).toBe(true)
  })

  it('applies file, then SWARMTUNE_* env, then flags', () => {
    const file = join(dir, 'c.json')
    writeFileSync(file, JSON.stringify({ api: { port: 5000 }, store: { maxRecords: 10 }, net: { bootstrap: ['/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu'] } }))
    const env = { SWARMTUNE_API_PORT: '6000', SWARMTUNE_BOOTSTRAP: '/ip4/5.6.7.8/tcp/1/p2p/12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu, /ip4/9.9.9.9/tcp/2/p2p/12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu', SWARMTUNE__net__sync__intervalMs: '2000', SWARMTUNE_LOCAL_TESTBED: 'true' }
    const cfg = loadConfig({ file, env, overrides: { dataDir: join(dir, 'd'), api: { host: '0.0.0.0' } } })
    expect(cfg.api).toEqual({ host: '0.0.0.0', port: 6000 })
    expect(cfg.store.maxRecords).toBe(10)
    expect(cfg.net.bootstrap).toEqual(['/ip4/5.6.7.8/tcp/1/p2p/12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu', '/ip4/9.9.9.9/tcp/2/p2p/12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu'])
    expect(cfg.net.sync.intervalMs).toBe(2000)
    expect(cfg.net.localTestbed).toBe(true)
    expect(cfg.dataDir).toBe(join(dir, 'd'))
  })

  it('engine.publishHardware: full by default, capability by env shortcut or key path', () => {
    expect(loadConfig({ env: {} }).engine.publishHardware).toBe('full')
    expect(loadConfig({ env: { SWARMTUNE_PUBLISH_HARDWARE: 'capability' } }).engine.publishHardware).toBe('capability')
    expect(loadConfig({ env: { SWARMTUNE__engine__publishHardware: 'capability' } }).engine.publishHardware).toBe('capability')
  })

  it('names the offending field of a bad config (E_CONFIG)', () => {
    expect(codeAndMessage(() => loadConfig({ env: { SWARMTUNE_API_PORT: '70000' } }))).toEqual(['E_CONFIG', 'invalid config at api.port: must be <= 65535'])
    expect(codeAndMessage(() => loadConfig({ env: { SWARMTUNE__net__nope: '1' } }))?.[1]).toBe('invalid config at net.nope: unknown key')
    expect(codeAndMessage(() => loadConfig({ env: {}, file: join(dir, 'missing.json') }))?.[0]).toBe('E_CONFIG')
    // every kind of schema failure names the field as users write it
    const msg = (env: Record<string, string>): string | undefined => codeAndMessage(() => loadConfig({ env }))?.[1]
    expect(msg({ SWARMTUNE_LISTEN: '/ip4/127.0.0.1/tcp/1,nope' })).toBe('invalid config at net.listen[1]: must match ^/')
    expect(msg({ SWARMTUNE__engine__threads: '1.5' })).toBe('invalid config at engine.threads: must be an integer')
    expect(msg({ SWARMTUNE__engine__gpu: 'tpu' })).toBe('invalid config at engine.gpu: must be one of "auto", "cpu", "cuda", "vulkan", "metal"')
    expect(msg({ SWARMTUNE__net__localTestbed: '"yes"' })).toBe('invalid config at net.localTestbed: must be true or false')
    expect(msg({ SWARMTUNE__api: '3' })).toBe('invalid config at api: must be an object')
    expect(msg({ SWARMTUNE_PUBLISH_HARDWARE: 'none' })).toBe('invalid config at engine.publishHardware: must be one of "full", "capability"')
    expect(msg({ SWARMTUNE_DATA_DIR: '' })).toBe('invalid config at dataDir: must have at least 1 characters')
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, '{ not json')
    expect(codeAndMessage(() => loadConfig({ env: {}, file: bad }))?.[1]).toMatch(/is not valid JSON/)
  })

  it("net.verifyWorkers is 'auto' by default, takes a count (0 = inline) from file or env, and refuses anything else", () => {
    expect(loadConfig({ env: {} }).net.verifyWorkers).toBe('auto')
    expect(loadConfig({ env: { SWARMTUNE_VERIFY_WORKERS: '0' } }).net.verifyWorkers).toBe(0)
    expect(loadConfig({ env: {}, overrides: { net: { verifyWorkers: 3 } } }).net.verifyWorkers).toBe(3)
    const bad = codeAndMessage(() => loadConfig({ env: {}, overrides: { net: { verifyWorkers: 'many' } } }))
    expect(bad?.[0]).toBe('E_CONFIG')
    expect(bad?.[1]).toContain('net.verifyWorkers')
    expect(codeAndMessage(() => loadConfig({ env: {}, overrides: { net: { verifyWorkers: -1 } } }))?.[0]).toBe('E_CONFIG')
  })

  it('store.writeBufferMb takes a size in MiB from file or env path and refuses 0 with its path', () => {
    expect(loadConfig({ env: { SWARMTUNE__store__writeBufferMb: '8' } }).store.writeBufferMb).toBe(8)
    expect(loadConfig({ env: {}, overrides: { store: { maxRecords: 10 } } }).store.writeBufferMb).toBe(DEFAULT_WRITE_BUFFER_MB)
    const bad = codeAndMessage(() => loadConfig({ env: {}, overrides: { store: { writeBufferMb: 0 } } }))
    expect(bad?.[0]).toBe('E_CONFIG')
    expect(bad?.[1]).toContain('store.writeBufferMb')
  })

  it('refuses peer lists that are not peer IDs (issue #18: allowPeers ["garbage"] was accepted)', () => {
    const id = '12D3KooWGzh5QZc6dYWnTtDeBQS3MZ2oFbYCU2K5sGi6bSWsgLNr'
    for (const list of ['allowPeers', 'denyPeers', 'priorityPeers']) {
      const bad = codeAndMessage(() => loadConfig({ env: {}, overrides: { net: { [list]: ['garbage'] } } }))
      expect(bad?.[0]).toBe('E_CONFIG')
      expect(bad?.[1]).toContain(`net.${list}`)
      expect(loadConfig({ env: {}, overrides: { net: { [list]: [id] } } }).net[list as 'allowPeers']).toEqual([id])
    }
    expect(loadConfig({ env: { SWARMTUNE__net__priorityPeers: JSON.stringify([id]) } }).net.priorityPeers).toEqual([id])
  })

  it('ignores unrelated environment variables', () => {
    expect(envOverrides({ PATH: '/bin', SWARMTUNEX: '1' })).toEqual({})
  })

  it('keeps each default in config/default.json: the code\'s fallbacks for callers without a config agree with it', () => {
    const cfg = loadConfig({ env: {} })
    const trust = cfg.trust!
    expect({
      gossipPerPeerPerSecond: DEFAULT_GUARD.gossipPerPeerPerSecond,
      gossipBurst: DEFAULT_GUARD.gossipBurst,
      gossipPerAuthorPerSecond: DEFAULT_GUARD.gossipPerAuthorPerSecond,
      gossipAuthorBurst: DEFAULT_GUARD.gossipAuthorBurst
    }).toEqual({
      gossipPerPeerPerSecond: trust.gossipPerPeerPerSecond,
      gossipBurst: trust.gossipBurst,
      gossipPerAuthorPerSecond: trust.gossipPerAuthorPerSecond,
      gossipAuthorBurst: trust.gossipAuthorBurst
    })
    expect(DEFAULT_TRUST_PARAMS.unprovenCap).toBe(trust.unprovenCap)
    expect(DEFAULT_TRUST_EVALUATE_INTERVAL_MS).toBe(trust.evaluateIntervalMs)
    expect(DEFAULT_COLD_OWN_RECORDS).toBe(cfg.vote.coldOwnRecords)
    expect(DEFAULT_WRITE_BUFFER_MB).toBe(cfg.store.writeBufferMb)
  })
})

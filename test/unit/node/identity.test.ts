import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity } from '../../../src/node/identity.js'

// The node identity is the other thing persisted in the data dir, next to the store.
let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-id-')) })
afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

describe('node identity', () => {
  it('creates an ed25519 key with mode 0600 and reuses it: stable peer id', async () => {
    const first = await loadOrCreateIdentity(join(dir, 'data'))
    expect(first.created).toBe(true)
    expect(first.privateKey.type).toBe('Ed25519')
    expect(first.peerId.toString()).toMatch(/^12D3KooW/)
    expect(statSync(first.file).mode & 0o777).toBe(0o600)
    const again = await loadOrCreateIdentity(join(dir, 'data'))
    expect(again.created).toBe(false)
    expect(again.peerId.toString()).toBe(first.peerId.toString())
  })

  it('refuses a key file readable by group or others', async () => {
    const id = await loadOrCreateIdentity(dir)
    chmodSync(id.file, 0o644)
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'E_KEY_PERMISSIONS' })
  })

  it('refuses a key file that is not a libp2p key', async () => {
    writeFileSync(join(dir, 'identity.key'), 'not a key', { mode: 0o600 })
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'E_KEY_INVALID' })
  })
})

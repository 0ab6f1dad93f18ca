import { describe, it, expect, afterEach } from 'vitest'
import { mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkAccess, hostOf, isLoopbackHost, type AccessPolicy } from '../../../src/node/api-access.js'
import { loadApiToken } from '../../../src/node/api-token.js'
import { apiToken, setApiToken } from '../../../src/node/api-client.js'

const loopback: AccessPolicy = { boundHost: '127.0.0.1', allowHosts: [], allowOrigins: [], requireToken: false }
const json = { host: '127.0.0.1:4100', 'content-type': 'application/json', 'content-length': '2' }
function code (policy: AccessPolicy, method: string, headers: Record<string, string>): string | undefined {
  try {
    checkAccess(policy, method, headers, 4100)
    return undefined
  } catch (err) {
    return `${(err as { status: number }).status} ${(err as { code: string }).code}`
  }
}

describe('control API access (issue #18)', () => {
  it('knows loopback names and splits Host headers', () => {
    for (const h of ['localhost', 'LOCALHOST.', 'app.localhost', '127.0.0.1', '127.8.9.1', '[::1]', '::1']) expect(isLoopbackHost(h), h).toBe(true)
    for (const h of ['evil.example', '10.0.0.1', '0.0.0.0', 'localhost.evil.example', '::2', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false)
    expect(hostOf('evil.example:4100')).toBe('evil.example')
    expect(hostOf('[::1]:4100')).toBe('[::1]')
    expect(hostOf('LocalHost')).toBe('localhost')
  })

  it('answers the CLI and the openai client on loopback', () => {
    expect(code(loopback, 'POST', json)).toBeUndefined()
    expect(code(loopback, 'POST', { ...json, 'content-type': 'application/x-ndjson' })).toBeUndefined()
    expect(code(loopback, 'POST', { ...json, host: 'localhost:4100', authorization: 'Bearer sk-anything' })).toBeUndefined()
    expect(code(loopback, 'GET', { host: '[::1]:4100' })).toBeUndefined()
    // a body-less POST without a type (nothing a form could carry)
    expect(code(loopback, 'POST', { host: '127.0.0.1:4100' })).toBeUndefined()
  })

  it('refuses DNS rebinding, foreign origins and preflight-free content types', () => {
    expect(code(loopback, 'GET', { host: 'evil.example:4100' })).toBe('403 E_BAD_HOST')
    expect(code(loopback, 'POST', { ...json, origin: 'http://evil.example' })).toBe('403 E_FORBIDDEN_ORIGIN')
    expect(code(loopback, 'POST', { ...json, origin: 'null' })).toBe('403 E_FORBIDDEN_ORIGIN')
    expect(code(loopback, 'POST', { ...json, origin: 'http://localhost:9999' })).toBe('403 E_FORBIDDEN_ORIGIN')
    expect(code(loopback, 'POST', { ...json, 'sec-fetch-site': 'cross-site' })).toBe('403 E_FORBIDDEN_ORIGIN')
    for (const t of ['text/plain', 'text/plain;charset=UTF-8', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
      expect(code(loopback, 'POST', { ...json, 'content-type': t }), t).toBe('415 E_CONTENT_TYPE')
    }
    expect(code(loopback, 'POST', { host: '127.0.0.1:4100', 'content-length': '5' })).toBe('415 E_CONTENT_TYPE')
  })

  it('lets the operator allow the dashboard origin and other host names', () => {
    expect(code(loopback, 'POST', { ...json, origin: 'http://127.0.0.1:4100' })).toBeUndefined()
    const allowed = { ...loopback, allowHosts: ['node.lan'], allowOrigins: ['http://localhost:3000'] }
    expect(code(allowed, 'POST', { ...json, origin: 'http://localhost:3000' })).toBeUndefined()
    expect(code(allowed, 'GET', { host: 'node.lan:4100' })).toBeUndefined()
  })

  it('beyond loopback needs the bearer token, which also passes the Host check', () => {
    const open: AccessPolicy = { boundHost: '0.0.0.0', allowHosts: [], allowOrigins: [], token: 's3cret', requireToken: true }
    expect(code(open, 'GET', { host: 'bootstrap:4100' })).toBe('401 E_UNAUTHORIZED')
    expect(code(open, 'GET', { host: 'bootstrap:4100', authorization: 'Bearer nope' })).toBe('401 E_BAD_TOKEN')
    expect(code(open, 'GET', { host: 'bootstrap:4100', authorization: 'Bearer s3cret' })).toBeUndefined()
    expect(code(open, 'POST', { ...json, host: 'bootstrap:4100', authorization: 'Bearer s3cret', 'content-type': 'text/plain' })).toBe('415 E_CONTENT_TYPE')
  })

  it('lets the dashboard post from the name it was loaded by, and no other page', () => {
    const open: AccessPolicy = { boundHost: '0.0.0.0', allowHosts: [], allowOrigins: [], token: 's3cret', requireToken: true }
    const lan = { ...json, host: '192.168.1.5:4100', authorization: 'Bearer s3cret' }
    expect(code(open, 'POST', { ...lan, origin: 'http://192.168.1.5:4100' })).toBeUndefined()
    expect(code(open, 'POST', { ...lan, origin: 'http://192.168.1.5:8080' })).toBe('403 E_FORBIDDEN_ORIGIN')
    expect(code(open, 'POST', { ...lan, origin: 'https://192.168.1.5:4100' })).toBe('403 E_FORBIDDEN_ORIGIN')
    // another page on this machine's loopback: its origin names its own port, not the API's
    expect(code(loopback, 'POST', { ...json, origin: 'http://127.0.0.1:3000' })).toBe('403 E_FORBIDDEN_ORIGIN')
    // a rebinding page has a matching Origin and Host, but the Host check refuses it first
    expect(code(loopback, 'POST', { ...json, host: 'evil.example:4100', origin: 'http://evil.example:4100' })).toBe('403 E_BAD_HOST')
  })
})

describe('api token file', () => {
  const dirs: string[] = []
  afterEach(() => {
    setApiToken(undefined)
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'swarmtune-token-')); dirs.push(d); return d }

  it('is created once with mode 0600, reused, and read by the CLI', () => {
    const dir = tmp()
    expect(loadApiToken(dir, false, {}).token).toBeUndefined()
    const a = loadApiToken(dir, true, {})
    expect(a.created).toBe(true)
    expect(statSync(join(dir, 'api-token')).mode & 0o777).toBe(0o600)
    const b = loadApiToken(dir, true, {})
    expect(b).toMatchObject({ token: a.token, created: false })
    expect(apiToken({ SWARMTUNE_DATA_DIR: dir })).toBe(a.token)
    expect(apiToken({ SWARMTUNE_DATA_DIR: dir, SWARMTUNE_API_TOKEN: 'env' })).toBe('env')
    setApiToken('flag')
    expect(apiToken({ SWARMTUNE_DATA_DIR: dir, SWARMTUNE_API_TOKEN: 'env' })).toBe('flag')
  })

  it('takes SWARMTUNE_API_TOKEN / _FILE and refuses a file others can read', () => {
    const dir = tmp()
    expect(loadApiToken(dir, true, { SWARMTUNE_API_TOKEN: 'x' })).toMatchObject({ token: 'x', created: false })
    const shared = join(dir, 'shared-token')
    const a = loadApiToken(join(dir, 'one'), true, { SWARMTUNE_API_TOKEN_FILE: shared })
    expect(loadApiToken(join(dir, 'two'), true, { SWARMTUNE_API_TOKEN_FILE: shared }).token).toBe(a.token)
    writeFileSync(join(dir, 'api-token'), 'leaked\n')
    chmodSync(join(dir, 'api-token'), 0o644)
    expect(() => loadApiToken(dir, true, {})).toThrow(/E_TOKEN_PERMISSIONS|accessible by group/)
  })
})

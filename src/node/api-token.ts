import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { SwarmtuneError } from '../util/errors.js'

/**
 * The control API's bearer token (issue #18), like Jupyter's: `SWARMTUNE_API_TOKEN` if set, else
 * the file `SWARMTUNE_API_TOKEN_FILE` or `<dataDir>/api-token` (mode 0600). The daemon creates the
 * file when its API needs a token (a non-loopback bind); the CLI reads the same places
 * (src/node/api-client.ts). docker-compose shares one file between its services.
 */
export const API_TOKEN_FILE = 'api-token'

export interface ApiToken {
  token?: string
  /** where it came from: the file path, or 'SWARMTUNE_API_TOKEN' */
  source: string
  created: boolean
}

export function apiTokenFile (dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const f = env.SWARMTUNE_API_TOKEN_FILE
  return f != null && f !== '' ? f : join(dataDir, API_TOKEN_FILE)
}

/** Read a token file, refusing one that group or others can read (it may have leaked). */
export function readTokenFile (file: string): string | undefined {
  let text: string
  try {
    const st = statSync(file)
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new SwarmtuneError('E_TOKEN_PERMISSIONS', `token file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`)
    }
    text = readFileSync(file, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (text === '') throw new SwarmtuneError('E_TOKEN_INVALID', `token file ${file} is empty`)
  return text
}

/** The daemon's token; with `create`, one is generated when none exists. */
export function loadApiToken (dataDir: string, create: boolean, env: NodeJS.ProcessEnv = process.env): ApiToken {
  const fromEnv = env.SWARMTUNE_API_TOKEN
  if (fromEnv != null && fromEnv !== '') return { token: fromEnv, source: 'SWARMTUNE_API_TOKEN', created: false }
  const file = apiTokenFile(dataDir, env)
  const existing = readTokenFile(file)
  if (existing != null || !create) return { token: existing, source: file, created: false }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const token = randomBytes(32).toString('base64url')
  // link() refuses an existing name: two daemons sharing one file (docker-compose) agree on one token
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, token + '\n', { mode: 0o600 })
  chmodSync(tmp, 0o600)
  try {
    linkSync(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { token: readTokenFile(file), source: file, created: false }
  } finally {
    unlinkSync(tmp)
  }
  return { token, source: file, created: true }
}

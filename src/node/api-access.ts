import { timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import { ApiError } from '../contracts/api.js'

/**
 * Who may drive the control API (issue #18). A local daemon is reachable by every web page the
 * operator opens, so on loopback it refuses what only a browser on someone else's behalf sends:
 * a foreign Host (DNS rebinding), a foreign Origin / cross-site Sec-Fetch-Site, and on requests
 * with a body the content types a page may send without a CORS preflight. Bound beyond
 * loopback it also requires `Authorization: Bearer <token>` (src/node/api-token.ts).
 * Pure: the server (src/node/api.ts) calls checkAccess before routing.
 */
export interface AccessPolicy {
  /** the address the API is bound to, e.g. 127.0.0.1 or 0.0.0.0 */
  boundHost: string
  /** extra Host names (without port) the operator allows, e.g. a reverse proxy's name */
  allowHosts: readonly string[]
  /** extra browser origins allowed to call the API, e.g. http://localhost:3000 ('*' = any) */
  allowOrigins: readonly string[]
  /** the bearer token; a request carrying it passes the Host check */
  token?: string
  /** refuse requests without the token (non-loopback binds, or api.requireToken) */
  requireToken: boolean
}

/** Content types accepted on requests with a body: none of them can be sent cross-site without a preflight. */
export const BODY_CONTENT_TYPES = ['application/json', 'application/x-ndjson', 'application/jsonl', 'application/x-jsonlines']

export function isLoopbackHost (host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.')
  return false
}

/** The host part of a Host header (`name:port`, `[v6]:port`). */
export function hostOf (header: string): string {
  const h = header.trim().toLowerCase()
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1)
  const colon = h.lastIndexOf(':')
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h
}

function bearer (headers: IncomingHttpHeaders): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')
  return m?.[1]
}

function sameSecret (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The daemon's own origin (its dashboard) on loopback: http://<loopback name>:<the API's port>. */
function ownOrigin (origin: string, port: number): boolean {
  let u: URL
  try { u = new URL(origin) } catch { return false }
  return u.protocol === 'http:' && isLoopbackHost(u.hostname) && Number(u.port === '' ? 80 : u.port) === port
}

/**
 * The page's own origin whatever name it was loaded by: Origin names the Host the request went
 * to. Checked after the Host check, so the Host is a trusted name or the request has the token
 * (the dashboard on a non-loopback bind, loaded as http://<lan address>:<port>/).
 */
function sameOrigin (origin: string, hostHeader: string | undefined): boolean {
  if (hostHeader == null) return false
  let u: URL
  try { u = new URL(origin) } catch { return false }
  const host = hostHeader.trim().toLowerCase()
  return u.protocol === 'http:' && (u.host === host || `${u.host}:80` === host)
}

/**
 * Throw the ApiError that refuses this request, or return normally. `port` is the API's bound port.
 */
export function checkAccess (policy: AccessPolicy, method: string, headers: IncomingHttpHeaders, port: number): void {
  const given = bearer(headers)
  const authed = policy.token != null && given != null && sameSecret(given, policy.token)
  if (policy.requireToken && !authed) {
    throw new ApiError(401, given == null ? 'E_UNAUTHORIZED' : 'E_BAD_TOKEN',
      given == null ? 'this control API needs Authorization: Bearer <token> (the api-token file in the data dir, --token or SWARMTUNE_API_TOKEN)' : 'the bearer token is wrong')
  }
  const hostHeader = headers.host
  if (!authed && hostHeader != null) {
    const host = hostOf(hostHeader)
    const bare = host.replace(/^\[|\]$/g, '')
    const ok = isLoopbackHost(host) || bare === policy.boundHost.toLowerCase() || policy.allowHosts.some(h => h.toLowerCase() === bare)
    if (!ok) throw new ApiError(403, 'E_BAD_HOST', `Host "${host}" is not this daemon's (a loopback name or address; others go in api.allowHosts)`)
  }
  const origin = headers.origin
  if (origin != null && !policy.allowOrigins.includes('*') && !policy.allowOrigins.includes(origin) && !ownOrigin(origin, port) && !sameOrigin(origin, hostHeader)) {
    throw new ApiError(403, 'E_FORBIDDEN_ORIGIN', `requests from origin ${origin} are refused (allow it in api.allowOrigins)`)
  }
  const site = headers['sec-fetch-site']
  if (origin == null && (site === 'cross-site' || site === 'same-site')) {
    throw new ApiError(403, 'E_FORBIDDEN_ORIGIN', `${site} browser requests are refused`)
  }
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return
  const type = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
  const hasBody = Number(headers['content-length'] ?? 0) > 0 || headers['transfer-encoding'] != null
  if (type === '' ? hasBody : !BODY_CONTENT_TYPES.includes(type)) {
    throw new ApiError(415, 'E_CONTENT_TYPE', `${method} needs Content-Type ${BODY_CONTENT_TYPES.slice(0, 2).join(' or ')}, got ${type === '' ? 'none' : type}`)
  }
}

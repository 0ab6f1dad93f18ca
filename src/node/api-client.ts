import { errorMessage, SwarmtuneError } from '../util/errors.js'
import type { BenchSelection, BenchSummary } from '../bench/prepare.js'
import type { BenchProgressEvent } from '../bench/runner.js'
import { apiTokenFile, readTokenFile } from './api-token.js'
import { defaultDataDir } from './data-dir.js'

/** The HTTP client of the control API (src/node/api.ts): used by the CLI and the testbed. */
export const DEFAULT_API = 'http://127.0.0.1:4100'

/** --api flag, else $SWARMTUNE_API, else the default port on loopback. */
export function apiUrl (flag?: string): string {
  return (flag ?? process.env.SWARMTUNE_API ?? DEFAULT_API).replace(/\/+$/, '')
}

let tokenFlag: string | undefined

/** The global --token flag (src/cli/main.ts). */
export function setApiToken (token: string | undefined): void {
  tokenFlag = token
}

/**
 * The bearer token the CLI sends: --token, else $SWARMTUNE_API_TOKEN, else the token file the
 * daemon writes ($SWARMTUNE_API_TOKEN_FILE, or api-token in $SWARMTUNE_DATA_DIR or the default data dir,
 * src/node/data-dir.ts).
 * None on a loopback daemon that does not need one.
 */
export function apiToken (env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (tokenFlag != null && tokenFlag !== '') return tokenFlag
  if (env.SWARMTUNE_API_TOKEN != null && env.SWARMTUNE_API_TOKEN !== '') return env.SWARMTUNE_API_TOKEN
  return readTokenFile(apiTokenFile(env.SWARMTUNE_DATA_DIR ?? defaultDataDir({ env }).dir, env))
}

/** Headers every CLI request carries: the token when there is one. */
export function apiHeaders (): Record<string, string> {
  const t = apiToken()
  return t != null ? { authorization: `Bearer ${t}` } : {}
}

/** An error answer of the daemon, with its status and whole reply (e.g. an import's partial report). */
export class ApiReplyError extends SwarmtuneError {
  constructor (code: string, message: string, readonly status: number, readonly reply: unknown) {
    super(code, message)
  }
}

export interface RequestOptions {
  method?: string
  body?: string
  contentType?: string
  timeoutMs?: number
}

/** Call the API; a JSON error reply becomes a SwarmtuneError with the daemon's code. */
export async function apiRequest<T = unknown> (base: string, path: string, opts: RequestOptions = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch(`${base}${path}`, {
      method: opts.method ?? (opts.body != null ? 'POST' : 'GET'),
      body: opts.body,
      headers: { ...apiHeaders(), ...(opts.body != null ? { 'content-type': opts.contentType ?? 'application/json' } : {}) },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000)
    })
  } catch (err) {
    const reason = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).name
    throw new SwarmtuneError('E_API_UNREACHABLE', `no swarmtune daemon answers at ${base} (${reason}); start one with \`swarmtune start\` or pass --api URL`)
  }
  const text = await res.text()
  let value: unknown = text
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try { value = JSON.parse(text) } catch {}
  }
  if (!res.ok) {
    const e = (value as { error?: { code?: string, message?: string } })?.error
    throw new ApiReplyError(e?.code ?? 'E_API', `${base}${path}: ${e?.message ?? `HTTP ${res.status}`}`, res.status, value)
  }
  return value as T
}

export async function apiGet<T = unknown> (base: string, path: string): Promise<T> {
  return await apiRequest<T>(base, path)
}

export async function apiPost<T = unknown> (base: string, path: string, body: string, contentType = 'application/json'): Promise<T> {
  return await apiRequest<T>(base, path, { method: 'POST', body, contentType })
}

/**
 * POST /bench on a daemon and follow its NDJSON event stream (src/bench/service.ts): progress
 * events go to onEvent, the final results are returned; an `error` event throws with its code.
 * Used by `swarmtune bench --api` and the testbed's learn scenario.
 */
/** A run cut short: the results received before `cause` (Ctrl-C keeps them, issue #20). */
export class PartialBenchRun extends Error {
  constructor (readonly results: BenchSummary[], override readonly cause: unknown) { super(`benchmark run cut short after ${results.length} results: ${errorMessage(cause)}`) }
}

/**
 * POST /bench on a daemon and follow its NDJSON event stream to the final results; a stream cut
 * short (or `signal` aborted) throws PartialBenchRun with what arrived, the API's own errors
 * throw as they are.
 */
export async function apiBench (base: string, sel: BenchSelection, onEvent: (ev: BenchProgressEvent) => void = () => {}, signal?: AbortSignal): Promise<BenchSummary[]> {
  let res: Response
  try {
    res = await fetch(`${base}/bench`, { method: 'POST', body: JSON.stringify(sel), headers: { ...apiHeaders(), 'content-type': 'application/json' }, signal })
  } catch (err) {
    if (signal?.aborted === true) throw new PartialBenchRun([], err)
    const reason = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).name
    throw new SwarmtuneError('E_API_UNREACHABLE', `no swarmtune daemon answers at ${base} (${reason}); start one with \`swarmtune start\` or run standalone with --data-dir`)
  }
  if (!res.ok || res.body == null) {
    const text = await res.text()
    let e: { code?: string, message?: string } | undefined
    try { e = (JSON.parse(text) as { error?: typeof e }).error } catch {}
    throw new SwarmtuneError(e?.code ?? 'E_API', `${base}/bench: ${e?.message ?? `HTTP ${res.status}`}`)
  }
  const decoder = new TextDecoder()
  let buf = ''
  const results: BenchSummary[] = []
  let final: BenchSummary[] | undefined
  const handle = (line: string): void => {
    if (line.trim() === '') return
    const ev = JSON.parse(line) as Record<string, unknown> & { event: string }
    if (ev.event === 'progress') onEvent(ev as unknown as BenchProgressEvent)
    else if (ev.event === 'result') { const { event: _e, ...s } = ev; results.push(s as unknown as BenchSummary) }
    else if (ev.event === 'done') final = ev.results as BenchSummary[]
    else if (ev.event === 'error') throw new SwarmtuneError(String(ev.code ?? 'E_API'), `the daemon's benchmark failed: ${String(ev.message)}`)
  }
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true })
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        handle(buf.slice(0, nl))
        buf = buf.slice(nl + 1)
      }
    }
    handle(buf)
  } catch (err) {
    throw new PartialBenchRun(results, err)
  }
  if (final == null) throw new PartialBenchRun(results, new SwarmtuneError('E_API', `${base}/bench: the event stream ended early (${results.length} results received)`))
  return final
}

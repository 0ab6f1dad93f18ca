import { SwarmtuneError } from '../util/errors.js'

/** The HTTP client of the control API (src/node/api.ts): used by the CLI and the testbed. */
export const DEFAULT_API = 'http://127.0.0.1:4100'

/** --api flag, else $SWARMTUNE_API, else the default port on loopback. */
export function apiUrl (flag?: string): string {
  return (flag ?? process.env.SWARMTUNE_API ?? DEFAULT_API).replace(/\/+$/, '')
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
      headers: opts.body != null ? { 'content-type': opts.contentType ?? 'application/json' } : undefined,
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
    throw new SwarmtuneError(e?.code ?? 'E_API', `${base}${path}: ${e?.message ?? `HTTP ${res.status}`}`)
  }
  return value as T
}

export async function apiGet<T = unknown> (base: string, path: string): Promise<T> {
  return await apiRequest<T>(base, path)
}

export async function apiPost<T = unknown> (base: string, path: string, body: string, contentType = 'application/json'): Promise<T> {
  return await apiRequest<T>(base, path, { method: 'POST', body, contentType })
}

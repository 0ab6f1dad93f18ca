import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { ApiError, type ApiReply, type ApiRequest, type ControlApi, type ErrorShape, type RouteHandler, type RouteOptions } from '../contracts/api.js'
import { checkAccess, isLoopbackHost, type AccessPolicy } from './api-access.js'

/**
 * The control HTTP API (JSON over node:http, bound to 127.0.0.1 by default). A tiny router that
 * other services extend: `api.route('POST', '/bench', handler)`. The core routes (status,
 * records, import, metrics) live in src/node/routes.ts.
 *
 * A handler returns `{ status?, json | text, contentType?, headers? }`, or nothing when it wrote
 * the response itself (streaming, e.g. server-sent events). Throwing an ApiError (or any
 * SwarmtuneError, mapped to 400) answers `{ error: { code, message } }`; other errors → 500.
 */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

export interface ApiInit {
  host: string
  /** 0 picks a free port */
  port: number
  /** body limit of routes that do not set their own (RouteOptions.maxBodyBytes) */
  maxBodyBytes?: number
  /** called once per answered request (metrics); `route` is the registered path, or 'unmatched' */
  onAnswered?: (method: string, route: string, status: number) => void
  /** extra Host names allowed (api.allowHosts) */
  allowHosts?: readonly string[]
  /** browser origins allowed besides the daemon's own (api.allowOrigins) */
  allowOrigins?: readonly string[]
  /** the bearer token (src/node/api-token.ts) */
  token?: string
  /** refuse requests without the token; default: when bound beyond loopback */
  requireToken?: boolean
}

/** HTTP status of error codes that are not ApiErrors (store health: issue #18). */
const STATUS_OF_CODE: Record<string, number> = { E_STORE_FULL: 507, E_STORE_IO: 503, E_OVERLOADED: 429 }

async function * streamBody (req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > max) throw new ApiError(413, 'E_BODY_TOO_LARGE', `request body over ${max} bytes`)
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > max) throw new ApiError(413, 'E_BODY_TOO_LARGE', `request body over ${max} bytes`)
    yield chunk as Buffer
  }
}

async function readBody (req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of streamBody(req, max)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

function send (res: ServerResponse, reply: ApiReply): void {
  const status = reply.status ?? 200
  const headers: Record<string, string> = { ...reply.headers }
  let payload: string
  if (reply.text != null) {
    payload = reply.text
    headers['content-type'] ??= reply.contentType ?? 'text/plain; charset=utf-8'
  } else {
    payload = JSON.stringify(reply.json ?? null)
    headers['content-type'] ??= reply.contentType ?? 'application/json'
  }
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(payload)) })
  res.end(payload)
}

/** The registered path that answers `path` for some method: itself, else the longest '/*' prefix route. */
function patternOf (routeKeys: Iterable<string>, path: string): string | undefined {
  const paths = [...routeKeys].map(k => k.slice(k.indexOf(' ') + 1))
  if (paths.includes(path)) return path
  return paths.filter(p => p.endsWith('/*') && path.length > p.length - 1 && path.startsWith(p.slice(0, -1)))
    .sort((a, b) => b.length - a.length)[0]
}

/** An error answer's JSON: the shape registered for the longest matching prefix, else ours. */
function errorJson (shapes: ReadonlyArray<{ prefix: string, shape: ErrorShape }>, path: string, status: number, err: unknown): unknown {
  const code = errorCode(err)
  const message = status === 500 ? 'internal error' : errorMessage(err)
  const shape = shapes.filter(s => path.startsWith(s.prefix)).sort((a, b) => b.prefix.length - a.prefix.length)[0]
  return shape != null ? shape.shape({ status, code, message, err }) : { error: { code, message } }
}

/** The request as handlers see it: the body read once on demand, within the route's limit. */
function apiRequest (raw: IncomingMessage, url: URL, method: string, limit: number): ApiRequest {
  let body: Promise<Buffer> | undefined
  const req: ApiRequest = {
    method,
    path: url.pathname,
    query: url.searchParams,
    raw,
    body: async () => await (body ??= readBody(raw, limit)),
    stream: () => streamBody(raw, limit),
    json: async <T>() => {
      const buf = await req.body()
      try {
        return JSON.parse(buf.toString('utf8')) as T
      } catch (err) {
        throw new ApiError(400, 'E_BAD_JSON', `request body is not JSON: ${errorMessage(err)}`)
      }
    }
  }
  return req
}

export function createApi (init: ApiInit): ControlApi {
  const logger = log('api')
  const maxBody = init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const routes = new Map<string, { handler: RouteHandler, maxBodyBytes: number, public: boolean }>()
  const shapes: Array<{ prefix: string, shape: ErrorShape }> = []
  const policy: AccessPolicy = {
    boundHost: init.host,
    allowHosts: init.allowHosts ?? [],
    allowOrigins: init.allowOrigins ?? [],
    token: init.token,
    requireToken: init.requireToken ?? !isLoopbackHost(init.host)
  }
  if (policy.requireToken && (policy.token == null || policy.token === '')) {
    throw new SwarmtuneError('E_API_TOKEN_MISSING', `the control API on ${init.host} needs a token (bound beyond loopback) and none was given`)
  }
  let server: Server | undefined
  let address: AddressInfo | undefined
  let servicesReady = false
  const drainer = createDrainer()

  async function handle (raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://localhost')
    const method = (raw.method ?? 'GET').toUpperCase()
    const pattern = patternOf(routes.keys(), url.pathname)
    if (init.onAnswered != null) {
      const onAnswered = init.onAnswered
      // a label per registered route only: arbitrary paths must not create new series
      const label = pattern ?? 'unmatched'
      res.once('finish', () => { onAnswered(method, label, res.statusCode) })
    }
    const route = pattern != null ? routes.get(`${method} ${pattern}`) : undefined
    const req = apiRequest(raw, url, method, route?.maxBodyBytes ?? maxBody)
    try {
      // static page files carry no node data: the page must load before it can ask for the token
      if (route?.public !== true) checkAccess(policy, method, raw.headers, address?.port ?? init.port)
      const handler = route?.handler
      if (handler == null) {
        if (pattern == null && !servicesReady) throw new ApiError(503, 'E_STARTING', `${url.pathname} is not served yet: the daemon is still starting its services, ask again in a moment`)
        throw pattern != null ? new ApiError(405, 'E_METHOD', `${method} is not allowed on ${url.pathname}`) : new ApiError(404, 'E_NOT_FOUND', `no route ${url.pathname}`)
      }
      const reply = await handler(req, res)
      if (reply != null && !res.headersSent) send(res, reply)
    } catch (err) {
      const status = err instanceof ApiError ? err.status : err instanceof SwarmtuneError ? STATUS_OF_CODE[err.code] ?? 400 : 500
      // 5xx are the operator's business: one line on stderr even without DEBUG
      if (status >= 500 && errorCode(err) !== 'E_STARTING') process.stderr.write(`swarmtune: ${method} ${url.pathname} failed (${status} ${errorCode(err)}): ${errorMessage(err)}\n`)
      if (status === 500) logger.error('%s %s failed: %s', method, url.pathname, (err as Error)?.stack ?? err)
      if (!res.headersSent) {
        // a full queue says when to come back (RFC 9110 Retry-After, seconds)
        const retryAfter = status === 429 || (status === 503 && errorCode(err) === 'E_STARTING') ? { 'retry-after': String((err as { retryAfterS?: number }).retryAfterS ?? 1) } : undefined
        send(res, { status, headers: retryAfter, json: errorJson(shapes, url.pathname, status, err) })
      } else {
        res.destroy()
      }
      // a client that exceeded the body limit is still sending: stop reading it
      if (status === 413) raw.destroy()
    }
  }

  return {
    statusContributors: new Map(),
    route (method, path, handler, opts?: RouteOptions) {
      const m = method.toUpperCase()
      if (opts?.public === true && m !== 'GET') throw new SwarmtuneError('E_PUBLIC_ROUTE', `only GET routes can be public, not ${m} ${path}`)
      routes.set(`${m} ${path}`, { handler, maxBodyBytes: opts?.maxBodyBytes ?? maxBody, public: opts?.public === true })
    },
    ready () {
      servicesReady = true
    },
    errorShape (prefix, shape) {
      shapes.push({ prefix, shape })
    },
    url () {
      if (address == null) throw new SwarmtuneError('E_NOT_STARTED', 'the control API is not listening')
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
      return `http://${host}:${address.port}`
    },
    async start () {
      const s = createServer((req, res) => { void handle(req, drainer.track(res)) })
      s.on('clientError', (_err, socket) => { socket.destroy() })
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err: NodeJS.ErrnoException) => {
          reject(err.code === 'EADDRINUSE'
            ? new SwarmtuneError('E_API_PORT_IN_USE', `control API port ${init.host}:${init.port} is in use (set --api-port)`)
            : err)
        })
        s.listen(init.port, init.host, () => { resolve() })
      })
      server = s
      address = s.address() as AddressInfo
      logger('listening on %s', this.url())
    },
    async drain (graceMs) {
      if (server == null) return
      const left = await drainer.drain(server, graceMs)
      if (left > 0) logger('drained: %d requests still in flight', left)
    },
    async stop () {
      const s = server
      server = undefined
      if (s == null) return
      s.closeAllConnections()
      await drainer.closed(s)
    }
  }
}

/**
 * Shutdown without cutting answers short (issue #18): count the requests in flight; a drain
 * closes the listener (new connections refused at once) and idle keep-alive connections, then
 * waits for the requests in flight, at most `graceMs`. Returns how many were still running.
 */
function createDrainer (): { track: (res: ServerResponse) => ServerResponse, drain: (s: Server, graceMs: number) => Promise<number>, closed: (s: Server) => Promise<void> } {
  let inFlight = 0
  let draining = false
  let onIdle: (() => void) | undefined
  /** the listener's close, once a drain began it (a second close would never call back) */
  let closing: Promise<void> | undefined
  const close = (s: Server): Promise<void> => (closing ??= new Promise<void>(resolve => { s.close(() => { resolve() }) }))
  return {
    track (res) {
      inFlight++
      // a request that came on a kept-alive connection while draining: none after it on that connection
      if (draining) res.setHeader('connection', 'close')
      res.once('close', () => { if (--inFlight === 0) onIdle?.() })
      return res
    },
    async drain (s, graceMs) {
      if (draining) return inFlight
      draining = true
      void close(s)
      s.closeIdleConnections()
      if (inFlight > 0) {
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, graceMs)
          onIdle = () => { clearTimeout(timer); resolve() }
        })
      }
      return inFlight
    },
    closed: close
  }
}

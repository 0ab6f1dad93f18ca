import type { IncomingMessage, ServerResponse } from 'node:http'
import { SwarmtuneError } from '../util/errors.js'

/**
 * The control HTTP API as services see it: they register routes and /status fields on it. The
 * server itself (JSON over node:http) is src/node/api.ts.
 *
 * A handler returns `{ status?, json | text, contentType?, headers? }`, or nothing when it wrote
 * the response itself (streaming, e.g. server-sent events). Throwing an ApiError (or any
 * SwarmtuneError, mapped to 400) answers `{ error: { code, message } }`; other errors → 500.
 */
export interface ApiRequest {
  method: string
  path: string
  query: URLSearchParams
  raw: IncomingMessage
  /** the request body, at most maxBodyBytes (413 E_BODY_TOO_LARGE beyond) */
  body: () => Promise<Buffer>
  /** the body as it arrives, for routes that process it in pieces (same limit as body()) */
  stream: () => AsyncIterable<Buffer>
  /** the body parsed as JSON (400 E_BAD_JSON when it does not parse) */
  json: <T = unknown>() => Promise<T>
}

export interface ApiReply {
  status?: number
  json?: unknown
  text?: string
  contentType?: string
  headers?: Record<string, string>
}

export type RouteHandler = (req: ApiRequest, res: ServerResponse) => Promise<ApiReply | undefined | void> | ApiReply | undefined | void

export class ApiError extends SwarmtuneError {
  readonly status: number
  constructor (status: number, code: string, message: string) {
    super(code, message)
    this.status = status
  }
}

export interface RouteOptions {
  /** this route's request body limit (413 E_BODY_TOO_LARGE beyond); default the server's */
  maxBodyBytes?: number
  /**
   * A GET route that serves only static files (the dashboard page and its scripts): answered
   * without the token and Host checks, so a browser can load the page that then asks for the
   * token. Never for a route that returns node data.
   */
  public?: boolean
}

/** What an error answer's JSON is made of, for routes that speak another API's error shape. */
export interface ErrorInfo { status: number, code: string, message: string, err: unknown }
export type ErrorShape = (e: ErrorInfo) => unknown

export interface ControlApi {
  start: () => Promise<void>
  stop: () => Promise<void>
  /**
   * Stop accepting (shutdown, issue #18): close the listener and idle keep-alive connections at
   * once, then resolve when the requests in flight have been answered or after `graceMs`; `stop`
   * then closes whatever is left.
   */
  drain?: (graceMs: number) => Promise<void>
  /**
   * register (or replace) a route; path is exact, e.g. '/v1/chat/completions', or a prefix ending
   * in '/*' ('/v1/models/*' matches '/v1/models/x'; exact routes win)
   */
  route: (method: string, path: string, handler: RouteHandler, opts?: RouteOptions) => void
  /** answer errors on paths under `prefix` (unmatched ones included) in this shape instead of `{ error: { code, message } }` */
  errorShape: (prefix: string, shape: ErrorShape) => void
  /**
   * Every service has registered its routes (issue #18): until then a path with no route answers
   * 503 `E_STARTING` with Retry-After instead of 404, since its route may be seconds away.
   */
  ready?: () => void
  /** http://host:port once started */
  url: () => string
  /** extra top-level fields of GET /status, e.g. statusContributors.set('snapshot', () => ...) */
  readonly statusContributors: Map<string, () => unknown>
}


import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { OBJECTIVES, type Objective } from '../contracts/objective.js'
import type { ResultMetrics } from '../records/types.js'
import type { Counters } from '../util/counters.js'
import { parseMaxTokens, parsePrompts } from './recommend.js'
import { rpcCall, type RpcCallOptions } from './rpc/client.js'
import { invalidField } from './rpc/errors.js'
import type { RpcLimits, ViolationHook } from './rpc/limits.js'
import { createRpcServer, rpcService, type RpcService } from './rpc/server.js'
import { INFER_PROTOCOL } from './types.js'

/**
 * `/swarmtune/infer/1.0.0`: run a batch of prompts on a peer with the method it chooses. Same
 * framing, limits and error handling as recommend (the RPC framework, src/net/rpc/): one
 * length-prefixed JSON request → one length-prefixed JSON response or `{ error: { code, message } }`.
 * The deadline is longer (inference takes seconds) and a peer may run fewer batches at once.
 * Prompts and maxTokens are checked as in a recommend request (same REQUEST_LIMITS).
 */
export const DEFAULT_INFER_LIMITS: RpcLimits = {
  maxRequestBytes: 256 * 1024,
  maxResponseBytes: 4 * 1024 * 1024,
  timeoutMs: 120_000,
  // a whole request (≤ 256 KiB) in 5 s; a stalled stream is refused and charged long before the answer deadline
  firstFrameMs: 5_000,
  maxStreamsPerPeer: 4,
  maxStreamsTotal: 32,
  // issue #18: 8 of the 32 slots only for peers with standing (allow/priority lists, proven authors)
  reservedStreams: 8,
  maxPenalties: 20,
  penaltyWindowMs: 60_000,
  idleMs: 30_000,
  maxExchangesPerStream: 10_000
}

export interface InferRequest {
  /** model name on the serving peer (default: its default model) */
  model?: string
  prompts: string[]
  /** output cap per prompt, default 32 */
  maxTokens?: number
  objective?: Objective
  budget?: number
  sloTtftMs?: number
}

export interface InferResponse {
  model: string
  method: string
  source: string
  explored: boolean
  taskClass: string
  outputs: Array<{ text: string, promptTokens: number, outputTokens: number, ttftMs: number, latencyMs: number }>
  metrics: ResultMetrics
  features: Record<string, number>
  timings: Record<string, number>
}

/** Pure validation of an untrusted infer request. */
export function parseInferRequest (v: Record<string, unknown>): InferRequest {
  for (const k of Object.keys(v)) if (!['v', 'model', 'prompts', 'maxTokens', 'objective', 'budget', 'sloTtftMs'].includes(k)) invalidField(k, 'unknown field')
  if (v.v !== undefined && v.v !== 1) invalidField('v', 'unknown request version')
  const req: InferRequest = { prompts: parsePrompts(v.prompts) }
  if (v.model !== undefined) {
    if (typeof v.model !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/.test(v.model)) invalidField('model', 'must be a model name')
    req.model = v.model
  }
  const mt = parseMaxTokens(v.maxTokens)
  if (mt != null) req.maxTokens = mt
  if (v.objective !== undefined) {
    if (!OBJECTIVES.includes(v.objective as Objective)) invalidField('objective', 'must be throughput, latency or cost')
    req.objective = v.objective as Objective
  }
  for (const k of ['budget', 'sloTtftMs'] as const) {
    if (v[k] === undefined) continue
    const x = v[k]
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) invalidField(k, 'must be a non-negative number')
    req[k] = x
  }
  return req
}

export type ServeFn = (req: InferRequest & { signal?: AbortSignal }) => Promise<InferResponse>

export interface InferServiceInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  serve: ServeFn
  rejections: Counters
  limits?: Partial<RpcLimits>
  onViolation?: ViolationHook
  /** peers that may use the reserved slots (RpcServerInit.standing) */
  standing?: (peer: string) => boolean
}

export function createInferService (init: InferServiceInit): RpcService {
  const server = createRpcServer<InferRequest, InferResponse>({
    protocol: INFER_PROTOCOL,
    name: 'infer',
    limits: { ...DEFAULT_INFER_LIMITS, ...init.limits },
    parse: parseInferRequest,
    answer: async (req, ctx) => await init.serve({ ...req, signal: ctx.signal }),
    rejections: init.rejections,
    onViolation: init.onViolation,
    standing: init.standing
  })
  return rpcService(init.libp2p, INFER_PROTOCOL, server)
}

export async function requestInference (node: Pick<Libp2p, 'dialProtocol'>, target: PeerId | Multiaddr | Multiaddr[], request: InferRequest | Record<string, unknown>, opts: RpcCallOptions = {}): Promise<InferResponse> {
  return await rpcCall<InferResponse>(node, target, INFER_PROTOCOL, request, { timeoutMs: DEFAULT_INFER_LIMITS.timeoutMs + 5000, maxResponseBytes: DEFAULT_INFER_LIMITS.maxResponseBytes, ...opts })
}

import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { OBJECTIVES, type Objective } from '../contracts/objective.js'
import { canonicalize } from '../records/canonical.js'
import type { Counters } from '../util/counters.js'
import { rpcCall, type RpcCallOptions } from './rpc/client.js'
import { invalidField } from './rpc/errors.js'
import { DEFAULT_MAX_RESPONSE_BYTES, type RpcLimits, type ViolationHook } from './rpc/limits.js'
import { createRpcServer, rpcService, type RpcService } from './rpc/server.js'
import { RECOMMEND_PROTOCOL } from './types.js'

/**
 * `/swarmtune/recommend/1.0.0`: ask a peer which acceleration method to use for a task. The
 * request schema and its validation live here; framing, limits, deadlines and error handling are
 * the RPC framework's (src/net/rpc/), shared with `/swarmtune/infer/1.0.0` (src/net/infer.ts).
 */

export const DEFAULT_RECOMMEND_LIMITS: RpcLimits = {
  maxRequestBytes: 64 * 1024,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
  timeoutMs: 5_000,
  firstFrameMs: 5_000,
  maxStreamsPerPeer: 32,
  maxStreamsTotal: 256,
  reservedStreams: 64,
  maxPenalties: 20,
  penaltyWindowMs: 60_000,
  idleMs: 30_000,
  maxExchangesPerStream: 100_000
}

/** A model named by id (hash), by configured name, or by a (partial) descriptor. */
export interface ModelRef {
  id?: string
  name?: string
  params?: number
  layers?: number
  embd?: number
  heads?: number
  kvHeads?: number
  ff?: number
  vocab?: number
  ctx?: number
  weightBits?: number
  architecture?: string
  fileType?: string
}

/** The asking machine, when the answer is for a machine other than the answering peer. */
export interface HardwareHint {
  id?: string
  cpuModel?: string
  cores: number
  threads: number
  ramMiB: number
  gpus: Array<{ name?: string, vramMiB: number }>
  backend: string
  os?: string
  pricePerHour?: number
}

export interface RecommendRequest {
  model: ModelRef
  /** workload features (docs/FEATURES-workload.md); or computed from `prompts` */
  features?: Record<string, number>
  family?: string
  prompts?: string[]
  /** output cap per prompt (with prompts), default 32 */
  maxTokens?: number
  objective: Objective
  /** USD for the task (predicted runtime × price) */
  budget?: number
  slo?: { ttftMs?: number }
  hardware?: HardwareHint
  /** include the committee tally and weights for the task's class */
  committee?: boolean
  /** candidate methods (default: all known) */
  methods?: string[]
}

export interface RankedAnswer {
  method: string
  predicted: Record<string, number | null>
  uncertainty: number
  feasible?: boolean
  reason?: string
  /**
   * answer v2: false for a setting of the history (e.g. an imported `llama-bench:...` id) that the
   * answering peer's engine cannot run: advice, never chosen for local serving. Absent = runnable
   * (v1 answers never carry it).
   */
  runnable?: boolean
}

/** Version of the recommend answer: 2 adds `RankedAnswer.runnable` (history settings ranked as advice). */
export const RECOMMEND_ANSWER_VERSION = 2

export interface RecommendResponse {
  /** answer version (RECOMMEND_ANSWER_VERSION); absent in v1 answers. Older peers ignore it and the fields it adds */
  v?: number
  ranking: RankedAnswer[]
  evidence: { records: number, authors: number, snapshot: string | null }
  coldStart: boolean
  /** what the ranking came from: the meta-model, a fixed rule the model did not beat (safe-default), the committee (cold peer), or the cold-start rule */
  source: RecommendSource
  objective: Objective
  taskClass: string
  reason?: string
  committee?: unknown
}

export const RECOMMEND_SOURCES = ['meta', 'safe-default', 'committee', 'cold-start'] as const
export type RecommendSource = typeof RECOMMEND_SOURCES[number]

/**
 * A source read from a peer's answer: a value this release does not know (a newer peer's) reads
 * as `meta`, the model-based answer, so old and new peers keep talking.
 */
export function readSource (v: unknown): RecommendSource {
  return RECOMMEND_SOURCES.includes(v as RecommendSource) ? v as RecommendSource : 'meta'
}

export const REQUEST_LIMITS = {
  maxPrompts: 256,
  maxPromptChars: 32 * 1024,
  maxTokens: 4096,
  maxFeatures: 64,
  maxMethods: 64
} as const

const FEATURE_KEY_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}$/

function isObj (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

function finiteNonNeg (v: unknown, path: string, max = 1e12): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) invalidField(path, `must be a number in [0, ${max}]`)
  return v
}

function optString (v: unknown, path: string, max = 256): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalidField(path, `must be a string of 1..${max} characters`)
  return v
}

export function parseFeatures (v: unknown, path: string): Record<string, number> {
  if (!isObj(v)) invalidField(path, 'must be an object of numbers')
  const keys = Object.keys(v)
  if (keys.length > REQUEST_LIMITS.maxFeatures) invalidField(path, `more than ${REQUEST_LIMITS.maxFeatures} features`)
  const out: Record<string, number> = {}
  for (const k of keys) {
    if (!FEATURE_KEY_RE.test(k)) invalidField(path, `bad feature name ${JSON.stringify(k.slice(0, 64))}`)
    out[k] = finiteNonNeg(v[k], `${path}.${k}`)
  }
  return out
}

export function parseModelRef (v: unknown): ModelRef {
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 128) invalidField('model', 'must be a model id or name of 1..128 characters')
    return /^[0-9a-f]{16,64}$/.test(v) ? { id: v, name: v } : { name: v }
  }
  if (!isObj(v)) invalidField('model', 'must be a model id, name or descriptor')
  const out: ModelRef = {}
  out.id = optString(v.id, 'model.id', 64)
  out.name = optString(v.name, 'model.name', 128)
  out.architecture = optString(v.architecture, 'model.architecture', 64)
  out.fileType = optString(v.fileType, 'model.fileType', 32)
  for (const k of ['params', 'layers', 'embd', 'heads', 'kvHeads', 'ff', 'vocab', 'ctx', 'weightBits'] as const) {
    if (v[k] !== undefined) out[k] = finiteNonNeg(v[k], `model.${k}`, 1e13)
  }
  if (out.id == null && out.name == null && out.params == null) invalidField('model', 'needs an id, a name, or a descriptor with params')
  return out
}

export function parseHardwareHint (v: unknown): HardwareHint {
  if (!isObj(v)) invalidField('hardware', 'must be an object')
  const gpus = v.gpus ?? []
  if (!Array.isArray(gpus) || gpus.length > 16) invalidField('hardware.gpus', 'must be an array of at most 16')
  const backend = v.backend ?? (gpus.length > 0 ? 'cuda' : 'cpu')
  if (typeof backend !== 'string' || !/^[a-z]{1,16}$/.test(backend)) invalidField('hardware.backend', 'must be cpu | cuda | vulkan | metal | other')
  const cores = finiteNonNeg(v.cores, 'hardware.cores', 100_000)
  return {
    id: optString(v.id, 'hardware.id', 64),
    cpuModel: optString(v.cpuModel, 'hardware.cpuModel'),
    cores,
    threads: v.threads === undefined ? cores : finiteNonNeg(v.threads, 'hardware.threads', 100_000),
    ramMiB: finiteNonNeg(v.ramMiB, 'hardware.ramMiB', 1e9),
    gpus: gpus.map((g, i) => {
      if (!isObj(g)) invalidField(`hardware.gpus.${i}`, 'must be an object')
      return { name: optString(g.name, `hardware.gpus.${i}.name`), vramMiB: finiteNonNeg(g.vramMiB, `hardware.gpus.${i}.vramMiB`, 1e8) }
    }),
    backend,
    os: optString(v.os, 'hardware.os'),
    pricePerHour: v.pricePerHour === undefined ? undefined : finiteNonNeg(v.pricePerHour, 'hardware.pricePerHour', 1e4)
  }
}

export function parsePrompts (v: unknown, path = 'prompts'): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > REQUEST_LIMITS.maxPrompts) invalidField(path, `must be an array of 1..${REQUEST_LIMITS.maxPrompts} strings`)
  return v.map((p, i) => {
    if (typeof p !== 'string' || p.length > REQUEST_LIMITS.maxPromptChars) invalidField(`${path}.${i}`, `must be a string of at most ${REQUEST_LIMITS.maxPromptChars} characters`)
    return p
  })
}

export function parseMaxTokens (v: unknown, path = 'maxTokens'): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > REQUEST_LIMITS.maxTokens) invalidField(path, `must be an integer in [1, ${REQUEST_LIMITS.maxTokens}]`)
  return v
}

/**
 * Pure validation of an untrusted recommend request (also the task file of
 * `swarmtune recommend --task`). Workload features may come as `workload: { features }`,
 * `workload: { <feature>: n }` or `features`; otherwise `prompts` are required.
 */
export function parseRecommendRequest (v: Record<string, unknown>): RecommendRequest {
  const known = new Set(['v', 'model', 'workload', 'features', 'family', 'prompts', 'maxTokens', 'objective', 'budget', 'slo', 'hardware', 'committee', 'methods'])
  for (const k of Object.keys(v)) if (!known.has(k)) invalidField(k, 'unknown field')
  if (v.v !== undefined && v.v !== 1) invalidField('v', 'unknown request version')
  const req: RecommendRequest = { model: parseModelRef(v.model), objective: 'throughput' }
  if (v.objective !== undefined) {
    if (!OBJECTIVES.includes(v.objective as Objective)) invalidField('objective', `must be one of ${OBJECTIVES.join(', ')}`)
    req.objective = v.objective as Objective
  }
  let features: unknown = v.features
  if (v.workload !== undefined) {
    if (!isObj(v.workload)) invalidField('workload', 'must be an object')
    features = v.workload.features ?? Object.fromEntries(Object.entries(v.workload).filter(([k]) => k !== 'family' && k !== 'name'))
    if (typeof v.workload.family === 'string') req.family = optString(v.workload.family, 'workload.family', 64)
  }
  if (v.family !== undefined) req.family = optString(v.family, 'family', 64)
  if (features !== undefined) req.features = parseFeatures(features, 'workload.features')
  if (v.prompts !== undefined) req.prompts = parsePrompts(v.prompts)
  req.maxTokens = parseMaxTokens(v.maxTokens)
  if (req.features == null && req.prompts == null) invalidField('workload', 'give workload features or prompts')
  if (v.budget !== undefined) req.budget = finiteNonNeg(v.budget, 'budget', 1e9)
  if (v.slo !== undefined) {
    if (!isObj(v.slo)) invalidField('slo', 'must be an object')
    for (const k of Object.keys(v.slo)) if (k !== 'ttftMs') invalidField(`slo.${k}`, 'unknown field (only ttftMs)')
    req.slo = v.slo.ttftMs === undefined ? {} : { ttftMs: finiteNonNeg(v.slo.ttftMs, 'slo.ttftMs', 1e9) }
  }
  if (v.hardware !== undefined) req.hardware = parseHardwareHint(v.hardware)
  if (v.committee !== undefined) {
    if (typeof v.committee !== 'boolean') invalidField('committee', 'must be true or false')
    req.committee = v.committee
  }
  if (v.methods !== undefined) {
    if (!Array.isArray(v.methods) || v.methods.length === 0 || v.methods.length > REQUEST_LIMITS.maxMethods) invalidField('methods', `must be an array of 1..${REQUEST_LIMITS.maxMethods} method ids`)
    req.methods = v.methods.map((m, i) => {
      if (typeof m !== 'string' || !ID_RE.test(m)) invalidField(`methods.${i}`, 'bad method id')
      return m
    })
  }
  return req
}

/** The node-side answer for a valid request (src/node/serving.ts supplies it). */
export type RecommendAnswerFn = (req: RecommendRequest, ctx: { peer: string, signal: AbortSignal }) => Promise<RecommendResponse>

export interface RecommendServiceInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  answer: RecommendAnswerFn
  rejections: Counters
  limits?: Partial<RpcLimits>
  onViolation?: ViolationHook
  /** peers that may use the reserved slots (RpcServerInit.standing) */
  standing?: (peer: string) => boolean
}

export type RecommendService = RpcService

export function createRecommendService (init: RecommendServiceInit): RecommendService {
  const server = createRpcServer<RecommendRequest, RecommendResponse>({
    protocol: RECOMMEND_PROTOCOL,
    name: 'recommend',
    limits: { ...DEFAULT_RECOMMEND_LIMITS, ...init.limits },
    parse: parseRecommendRequest,
    answer: init.answer,
    rejections: init.rejections,
    onViolation: init.onViolation,
    standing: init.standing
  })
  return rpcService(init.libp2p, RECOMMEND_PROTOCOL, server)
}

/** Ask a peer for a recommendation. Throws RpcError with the server's code on an error response. */
export async function requestRecommendation (node: Pick<Libp2p, 'dialProtocol'>, target: PeerId | Multiaddr | Multiaddr[], request: Partial<RecommendRequest> | Record<string, unknown>, opts: RpcCallOptions = {}): Promise<RecommendResponse> {
  const res = await rpcCall<RecommendResponse>(node, target, RECOMMEND_PROTOCOL, request, opts)
  return readRecommendResponse(res)
}

/**
 * A peer's answer as this release reads it: an unknown `source` reads as `meta`; a v1 answer (no
 * `v`) is v1 and all its entries runnable; a `runnable` that is not a boolean is dropped (read as
 * runnable, as v1 did), so answers of older and newer peers both parse.
 */
export function readRecommendResponse (res: RecommendResponse): RecommendResponse {
  if (res == null || typeof res !== 'object') return res
  const ranking = Array.isArray(res.ranking)
    ? res.ranking.map(r => {
      if (r == null || typeof r !== 'object' || r.runnable === undefined || typeof r.runnable === 'boolean') return r
      const { runnable: _r, ...rest } = r
      return rest
    })
    : res.ranking
  return { ...res, v: typeof res.v === 'number' && Number.isInteger(res.v) && res.v >= 1 ? res.v : 1, source: readSource(res.source), ranking }
}

/** Stable text form of a request (cache keys). */
export function requestKey (req: RecommendRequest): string {
  return canonicalize(req)
}

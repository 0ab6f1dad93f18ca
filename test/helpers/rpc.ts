import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { invalidField } from '../../src/net/rpc/errors.js'
import type { RpcLimits } from '../../src/net/rpc/limits.js'
import { createRpcServer, rpcService, type RpcService } from '../../src/net/rpc/server.js'
import { Counters } from '../../src/util/counters.js'
import { DEFAULT_RECOMMEND_LIMITS } from '../../src/net/recommend.js'

/**
 * A throwaway protocol on the RPC framework, so the framework's tests do not depend on any real
 * protocol's schema: `{ text, mode? }` → `{ echo }`; mode "slow" answers after 1.5 s, "boom" throws.
 */
export const TEST_PROTOCOL = '/swarmtune-test/rpc/1.0.0'

export interface TestRequest { text: string, mode?: string }
export interface TestResponse { echo: string }

/** the recommend protocol's defaults, so the tests exercise realistic numbers */
export const TEST_LIMITS: RpcLimits = { ...DEFAULT_RECOMMEND_LIMITS }

export function parseTestRequest (v: Record<string, unknown>): TestRequest {
  for (const k of Object.keys(v)) if (k !== 'text' && k !== 'mode') invalidField(k, 'unknown field')
  if (typeof v.text !== 'string') invalidField('text', 'must be a string')
  if (v.mode !== undefined && typeof v.mode !== 'string') invalidField('mode', 'must be a string')
  return v.mode === undefined ? { text: v.text } : { text: v.text, mode: v.mode }
}

async function echo (req: TestRequest): Promise<TestResponse> {
  if (req.mode === 'slow') await new Promise(resolve => setTimeout(resolve, 1500))
  if (req.mode === 'boom') throw new Error('bug')
  return { echo: req.text }
}

export interface TestRpcServer {
  libp2p: Libp2p
  svc: RpcService
  rejections: Counters
  /** codes passed to the violation hook */
  violations: string[]
  /** every request that reached the answer function */
  answered: TestRequest[]
  stop: () => Promise<void>
}

/** A libp2p node on 127.0.0.1 serving TEST_PROTOCOL (counters named `test:<code>`). */
export async function startTestRpcServer (opts: { limits?: Partial<RpcLimits>, answer?: (req: TestRequest) => Promise<TestResponse>, standing?: (peer: string) => boolean } = {}): Promise<TestRpcServer> {
  const libp2p = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  const rejections = new Counters()
  const violations: string[] = []
  const answered: TestRequest[] = []
  const answer = opts.answer ?? echo
  const server = createRpcServer<TestRequest, TestResponse>({
    protocol: TEST_PROTOCOL,
    name: 'test',
    limits: { ...TEST_LIMITS, ...opts.limits },
    parse: parseTestRequest,
    answer: async (req) => { answered.push(req); return await answer(req) },
    rejections,
    onViolation: (_peer, code) => { violations.push(code) },
    standing: opts.standing
  })
  const svc = rpcService(libp2p, TEST_PROTOCOL, server)
  await svc.start()
  return {
    libp2p, svc, rejections, violations, answered,
    stop: async () => { await svc.stop(); await libp2p.stop() }
  }
}

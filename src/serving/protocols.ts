import type { Libp2p } from '@libp2p/interface'
import { createInferService } from '../net/infer.js'
import {
  createRecommendService, DEFAULT_RECOMMEND_LIMITS, type RecommendRequest, type RecommendResponse
} from '../net/recommend.js'
import type { RpcLimits, ViolationHook } from '../net/rpc/limits.js'
import type { RpcServerStats, RpcService } from '../net/rpc/server.js'
import type { Counters } from '../util/counters.js'
import type { ServeFn } from './types.js'

export interface ServingProtocolsInit {
  /** read when the protocols start and stop, not when they are created */
  network: { libp2p: Libp2p }
  rejections: Counters
  serve: ServeFn
  recommend: (req: RecommendRequest) => Promise<RecommendResponse>
  recommendLimits?: Partial<RpcLimits>
  inferLimits?: Partial<RpcLimits>
  onViolation?: ViolationHook
  /** peers that may use the slots kept for peers with standing (the peer guard's view) */
  standing?: (peer: string) => boolean
}

/** The peer protocols serving answers: `/swarmtune/recommend/1.0.0` and `/swarmtune/infer/1.0.0`. */
export interface ServingProtocols {
  start: () => Promise<void>
  stop: () => Promise<void>
  recommendStats: () => RpcServerStats
  /** undefined until started */
  inferStats: () => RpcServerStats | undefined
}

export function createServingProtocols (init: ServingProtocolsInit): ServingProtocols {
  const recommendSvc = createRecommendService({
    libp2p: {
      handle: async (...a) => { await init.network.libp2p.handle(...a) },
      unhandle: async (...a) => { await init.network.libp2p.unhandle(...a) }
    },
    answer: async (req) => await init.recommend(req),
    rejections: init.rejections,
    limits: { ...DEFAULT_RECOMMEND_LIMITS, ...init.recommendLimits },
    onViolation: init.onViolation,
    standing: init.standing
  })
  let inferSvc: RpcService | undefined

  return {
    async start () {
      await recommendSvc.start()
      inferSvc = createInferService({ libp2p: init.network.libp2p, serve: init.serve, rejections: init.rejections, limits: init.inferLimits, onViolation: init.onViolation, standing: init.standing })
      await inferSvc.start()
    },
    async stop () {
      await inferSvc?.stop()
      await recommendSvc.stop()
    },
    recommendStats: () => recommendSvc.stats(),
    inferStats: () => inferSvc?.stats()
  }
}

import { peerIdFromString } from '@libp2p/peer-id'
import type { Startable } from '../contracts/service.js'
import { createBenchService, type BenchService } from '../bench/service.js'
import type { Engine } from '../engine/types.js'
import { loadOrMeasureCapability, type OwnCapability } from '../engine/capability-probe.js'
import { systemProbe } from '../engine/hardware.js'
import { createMetaService, type MetaService } from '../meta/service.js'
import { RpcErrorCode } from '../net/rpc/errors.js'
import type { ViolationHook } from '../net/rpc/limits.js'
import { createServingService, type ServingService } from '../serving/service.js'
import { createTrustService, type TrustService } from '../trust/service.js'
import { createActivity, type Activity } from '../util/activity.js'
import { createHostCoordinator } from '../util/host-lock.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { createVoteService, type VoteService } from '../vote/service.js'
import type { CoreComponents } from './types.js'

/** The services the daemon runs on top of its core (store, network, control API). */
export type ServiceName = 'trust' | 'meta' | 'vote' | 'bench' | 'serving'
export const SERVICE_NAMES: readonly ServiceName[] = ['trust', 'meta', 'vote', 'bench', 'serving']

export interface NodeServices {
  trust?: TrustService
  meta?: MetaService
  votes?: VoteService
  bench?: BenchService
  serving?: ServingService
  /** inference in progress: the sweep and the served-record writes wait for it to end */
  activity: Activity
  /** in start order (stopped in reverse), with the node's shared engine last to close */
  readonly ordered: Array<[string, Startable]>
}

/**
 * The composition root of the services: each gets its own slice of the config (`XInit`) and
 * exactly the components it names (`XComponents`), and later services receive earlier ones
 * explicitly: trust → meta (training weights) → vote (rankings to vote on) → bench (spot checks)
 * and serving (meta-model, committee). Bench and serving share one lazily created engine and one
 * activity tracker, so the background sweep yields to inference.
 *
 * To add a service: give it `createX(init, components)` in its own folder, create it here after
 * the services it uses, and add it to `ordered`.
 */
export function createServices (core: CoreComponents, enabled: readonly ServiceName[] = SERVICE_NAMES): NodeServices {
  const { config } = core
  const on = (name: ServiceName): boolean => enabled.includes(name)
  const ordered: Array<[string, Startable]> = []
  // issue #17 item 6: this host's other daemons see this one serving, and take turns benchmarking
  const hostLock = config.bench.hostLock
  const host = hostLock?.enabled === false ? undefined : createHostCoordinator({ dir: hostLock?.dir ?? undefined })
  const activity = createActivity(host != null ? { mark: host.markBusy } : {})
  let enginePromise: Promise<Engine> | undefined
  const engine = async (): Promise<Engine> => {
    enginePromise ??= import('../engine/llama-engine.js').then(async m => await m.createLlamaEngine({ gpu: config.engine.gpu, threads: config.engine.threads }))
    enginePromise.catch(() => { enginePromise = undefined })
    return await enginePromise
  }

  // issue #16: this machine's measured capability (cached in the data dir), for its own feature rows
  let ownCapability: OwnCapability | undefined
  const capability: Startable = {
    start () {
      if ((config.engine.capabilityProbe ?? config.engine.prepareOnStart) === false) return
      const probe = systemProbe()
      void loadOrMeasureCapability(config.dataDir, probe, { budgetMs: 800 }).then(c => {
        ownCapability = { probe, measured: c }
        core.api.statusContributors.set('capability', () => ({ memBwGBs: c.memBwGBs, computeTflops: c.computeTflops, measuredAt: c.measuredAt, probeMs: c.probeMs, source: c.source }))
      }, (err: unknown) => { log('node:services').error('capability probe failed: %s', errorMessage(err)) })
    },
    stop () {}
  }
  ordered.push(['capability', capability])
  if (host != null) ordered.push(['host-lock', { start () {}, stop () { host.close() } }])

  const trust = on('trust')
    ? createTrustService({ config: config.trust }, { peerId: core.peerId, store: core.store, events: core.events, api: core.api, network: core.network, peerGuard: core.peerGuard })
    : undefined
  const meta = on('meta')
    ? createMetaService({ config }, { store: core.store, events: core.events, api: core.api, trust, metrics: core.metrics, ownCapability: () => ownCapability })
    : undefined
  const votes = on('vote')
    ? createVoteService({ config: config.vote }, {
      peerId: core.peerId, privateKey: core.privateKey, store: core.store, network: core.network, api: core.api, events: core.events, rejections: core.rejections, meta, trust
    })
    : undefined
  const bench = on('bench')
    ? createBenchService({ config }, { peerId: core.peerId, store: core.store, api: core.api, ownRecord: core.ownRecord, activity, engine, trust, meta, metrics: core.metrics, host })
    : undefined
  const serving = on('serving')
    ? createServingService({ config, ...rpcPeerHooks(core) }, { api: core.api, network: core.network, rejections: core.rejections, ownRecords: core.ownRecords, activity, engine, meta, votes, metrics: core.metrics, ownCapability: () => ownCapability })
    : undefined

  for (const [name, svc] of [['trust', trust], ['meta', meta], ['vote', votes], ['bench', bench], ['serving', serving]] as const) {
    if (svc != null) ordered.push([name, svc])
  }
  // stopped first of all (the list stops in reverse), after every user of the engine has stopped
  ordered.unshift(['engine', {
    start () {},
    async stop () {
      const e = enginePromise
      enginePromise = undefined
      if (e != null) await (await e.catch(() => undefined))?.close().catch((err: unknown) => { log('services')('engine close: %s', errorMessage(err)) })
    }
  }])
  return { trust, meta, votes, bench, serving, activity, ordered }
}

/**
 * Refusals not charged to the peer in the guard: E_BUSY and E_PEER_PENALIZED are bounded by the
 * server's own limits (a heavy honest client gets them), E_REQ_TIMEOUT after a whole request may
 * be this node's slow answer.
 */
const UNCHARGED: ReadonlySet<string> = new Set<string>([RpcErrorCode.BUSY, RpcErrorCode.PENALIZED, RpcErrorCode.TIMEOUT])

/**
 * Issue #18: refused recommend/infer requests count against the peer in the peer guard (a
 * stalled stream weighs more than a malformed one), a peer banned for it is hung up on at once,
 * and the guard says which peers have standing for the RPC slots kept for them.
 */
function rpcPeerHooks (core: CoreComponents): { onViolation?: ViolationHook, standing?: (peer: string) => boolean } {
  const guard = core.peerGuard
  if (guard == null) return {}
  return {
    onViolation: (peer, code, protocol) => {
      if (UNCHARGED.has(code)) return
      guard.onViolation?.(peer, code, protocol.includes('/infer/') ? 'infer' : 'recommend')
      if (guard.admitConnection?.(peer) === false) core.network.libp2p.hangUp(peerIdFromString(peer)).catch(() => {})
    },
    standing: peer => guard.standing(peer)
  }
}

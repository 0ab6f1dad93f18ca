import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { toWire } from '../records/sign.js'
import { claimedAuthor } from '../records/codec.js'
import type { SignedRecord } from '../records/types.js'
import type { Counters } from '../util/counters.js'
import type { Logger } from '../util/log.js'
import type { Ingest, IngestOutcome } from './ingest.js'
import type { Pacer } from './pacer.js'
import { RECORDS_TOPIC, type NetworkGuard } from './types.js'

/**
 * Pure: what gossipsub should do with a message after ingestion. New records (and new
 * equivocation evidence, which others need to see) are forwarded; duplicates and records that
 * may become valid later (clock skew) are dropped quietly; invalid ones are rejected, which
 * lowers the relaying peer's score.
 */
export function validatorResult (outcome: IngestOutcome): TopicValidatorResult {
  switch (outcome.kind) {
    case 'inserted':
    case 'equivocation':
      return TopicValidatorResult.Accept
    case 'rejected':
      return TopicValidatorResult.Reject
    default:
      return TopicValidatorResult.Ignore
  }
}

export interface RecordsTopicComponents {
  pubsub: GossipSub
  ingest: Ingest
  stats: Counters
  guard: NetworkGuard
  log: Logger
  /** the ingest pacer: accepted messages are handed back to gossipsub in turn (see validate) */
  pacer?: Pacer
}

export class RecordsTopic {
  constructor (private readonly c: RecordsTopicComponents) {}

  start (): void {
    // a validator must RETURN Reject: gossipsub maps a thrown error to Ignore
    this.c.pubsub.topicValidators.set(RECORDS_TOPIC, async (peer, msg) => await this.validate(peer, msg))
    this.c.pubsub.subscribe(RECORDS_TOPIC)
  }

  stop (): void {
    try {
      this.c.pubsub.unsubscribe(RECORDS_TOPIC)
      this.c.pubsub.topicValidators.delete(RECORDS_TOPIC)
    } catch {}
  }

  async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    const from = peer.toString()
    try {
      // refused before any work (counted by the guard): Ignore, so an over-eager but honest
      // relayer is not penalized; a flooder's score still falls through #7's scoring
      if (this.c.guard.admitGossip?.(from) === false) return TopicValidatorResult.Ignore
      // per-author budget (unproven authors), by the author the record claims, before it waits
      // for verification: a flood of one fresh identity's records stops here however many peers
      // relay it; the unit comes back unless the record proves to be that author's, valid and new
      const claimed = this.c.guard.reserveGossipAuthor == null ? undefined : claimedAuthor(msg.data)
      if (claimed != null && this.c.guard.reserveGossipAuthor?.(claimed) === false) {
        this.c.stats.inc('gossipAuthorLimited')
        this.c.stats.inc('gossipIgnored')
        return TopicValidatorResult.Ignore
      }
      let kept: string | undefined
      let outcome: IngestOutcome
      try {
        outcome = await this.c.ingest(msg.data, 'gossip')
        if (outcome.kind === 'inserted' || outcome.kind === 'equivocation') kept = outcome.record.body.author
      } finally {
        if (claimed != null && kept !== claimed) this.c.guard.refundGossipAuthor?.(claimed)
      }
      if (outcome.kind === 'rejected') this.c.guard.onViolation?.(from, outcome.code, 'gossip')
      const result = validatorResult(outcome)
      // gossipsub forwards an accepted message to the mesh as soon as the validator returns, and
      // a store batch completes hundreds of validators at once: returning in paced turns keeps
      // that forwarding burst from holding the event loop
      if (result === TopicValidatorResult.Accept && this.c.pacer != null) await this.c.pacer.run(() => undefined)
      return result
    } catch (err) {
      // ingest never throws by design; if it does, do not forward what we could not check
      this.c.log.error('records validator failed: %s', (err as Error)?.message)
      return TopicValidatorResult.Ignore
    }
  }

  /** Gossip a record that is already stored. Alone in the swarm is fine: sync delivers it later. */
  async publish (record: SignedRecord): Promise<number> {
    try {
      const res = await this.c.pubsub.publish(RECORDS_TOPIC, toWire(record))
      this.c.stats.inc('gossipPublished')
      return res.recipients.length
    } catch (err) {
      const msg = (err as Error)?.message ?? ''
      if (/PublishError\.(NoPeersSubscribedToTopic|Duplicate)/.test(msg)) return 0
      this.c.stats.inc('gossipPublishErrors')
      throw err
    }
  }
}

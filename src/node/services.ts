import type { ServiceFactory } from './types.js'
import { createMetaService } from '../meta/service.js'
import { voteService } from '../vote/service.js'
import { servingService } from '../serving/service.js'
import { createTrustService } from '../trust/service.js'

/**
 * Extra node services, started in this order after the store, network and control API (and
 * stopped in reverse). Each is `(components) => { start(), stop() }`; see NodeComponents in
 * ./types.js. To add one: import its factory here and append it to the list.
 */
export const services: ServiceFactory[] = [
  // per-author trust (issue #7), published as components.trust for meta (training weights) and votes
  (c) => { const trust = createTrustService(c); Object.assign(c, { trust }); return trust },
  // the meta-model, published as components.meta for the vote and serving services
  (c) => { const meta = createMetaService(c); Object.assign(c, { meta }); return meta },
  voteService,
  servingService
]

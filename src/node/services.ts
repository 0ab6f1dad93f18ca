import type { ServiceFactory } from './types.js'

/**
 * Extra node services, started in this order after the store, network and control API (and
 * stopped in reverse). Each is `(components) => { start(), stop() }`; see NodeComponents in
 * ./types.js. To add one: import its factory here and append it to the list.
 */
export const services: ServiceFactory[] = [
]

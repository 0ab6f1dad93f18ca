/**
 * The shape every node service has (js-libp2p's Startable): the composition root (src/node)
 * starts services in dependency order and stops them in reverse.
 */
export interface Startable {
  start: () => Promise<void> | void
  stop: () => Promise<void> | void
}

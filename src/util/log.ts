import { logger, type Logger } from '@libp2p/logger'

/** Namespaced debug logger (`DEBUG=swarmtune:*`), the same mechanism js-libp2p uses. */
export function log (component: string): Logger {
  return logger(`swarmtune:${component}`)
}
export type { Logger }

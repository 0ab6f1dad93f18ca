import { Socket } from 'node:net'
import type { MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'

/**
 * One socket write per event-loop turn instead of one per frame (issue #19 item 3).
 *
 * Every libp2p frame is its own `socket.write`: a recommend exchange on a kept-open stream costs
 * the answering node two writes (yamux's window update for the request, then the response frame),
 * each noise-encrypted on its own, and each a syscall that on loopback also runs the receiver's
 * TCP path. Profiled at 500 requests/s, those writes were the largest single cost of the daemon's
 * libp2p path. Here the first write of a turn corks the socket and a `setImmediate` uncorks it,
 * so everything written in the same turn (the window update and the answer; the answers of
 * several streams whose requests arrived together; a gossip frame and its neighbours) leaves in
 * one `writev`. The bytes on the wire are the same, in the same order; a write is delayed at
 * most to the end of the current loop turn (the check phase). Back-pressure is Node's own: a
 * corked socket still reports a full buffer, and 'drain' follows the flush.
 */
export function coalesceSocketWrites (socket: Socket): void {
  let corked = false
  let scheduled = false
  const flush = (): void => {
    if (!corked) return
    corked = false
    socket.uncork()
  }
  const endOfTurn = (): void => {
    scheduled = false
    flush()
  }
  const write = socket.write
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    const chunk = args[0] as { length?: number } | undefined
    const len = typeof chunk?.length === 'number' ? chunk.length : 0
    const mark = socket.writableHighWaterMark
    // the corked bytes stay under the high-water mark: a write that reports a full buffer
    // makes libp2p wait for 'drain' (measured: that slow path cost more than the writes saved)
    if (corked && socket.writableLength + len >= mark) flush()
    if (!corked && len < mark && !socket.destroyed && !socket.writableEnded) {
      corked = true
      socket.cork()
      if (!scheduled) {
        scheduled = true
        setImmediate(endOfTurn)
      }
    }
    return write.apply(this, args)
  } as Socket['write']
}

/** The TCP socket under a multiaddr connection, when it has one (@libp2p/tcp's does, as `socket`). */
function socketOf (maConn: MultiaddrConnection): Socket | undefined {
  const s = (maConn as unknown as { socket?: unknown }).socket
  return s instanceof Socket ? s : undefined
}

/** An upgrader that coalesces the writes of each connection's socket before upgrading it. */
function coalescingUpgrader (upgrader: Upgrader): Upgrader {
  const coalesce = (maConn: MultiaddrConnection): void => {
    const s = socketOf(maConn)
    if (s != null) coalesceSocketWrites(s)
  }
  return {
    upgradeOutbound: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeOutbound']>[1]) => { coalesce(maConn); return await upgrader.upgradeOutbound(maConn, opts) },
    upgradeInbound: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]) => { coalesce(maConn); await upgrader.upgradeInbound(maConn, opts) },
    createInboundAbortSignal: signal => upgrader.createInboundAbortSignal(signal),
    getStreamMuxers: () => upgrader.getStreamMuxers(),
    getConnectionEncrypters: () => upgrader.getConnectionEncrypters()
  }
}

/**
 * A transport (e.g. `tcp()`) whose connections' sockets coalesce their writes (above): its
 * dials and listeners get an upgrader that installs it on each new connection. Transports
 * without a Node socket (memory) are unchanged.
 */
export function withCoalescedWrites<C> (factory: (components: C) => Transport): (components: C) => Transport {
  return (components: C) => {
    const transport = factory(components)
    const dial = transport.dial.bind(transport)
    const createListener = transport.createListener.bind(transport)
    transport.dial = async (ma, options) => await dial(ma, { ...options, upgrader: coalescingUpgrader(options.upgrader) })
    transport.createListener = options => createListener({ ...options, upgrader: coalescingUpgrader(options.upgrader) })
    return transport
  }
}

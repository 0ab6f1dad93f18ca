import { describe, it, expect } from 'vitest'
import { busyListenAddrs } from '../../../src/net/index.js'

describe('busyListenAddrs', () => {
  it('reads the addresses libp2p names as EADDRINUSE, and only those', () => {
    const msg = 'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses:\n\n  /ip4/127.0.0.1/tcp/4101: Error: listen EADDRINUSE: address already in use 127.0.0.1:4101\n      at Server.setupListenHandle\n  /ip4/0.0.0.0/tcp/4102: Error: listen EACCES'
    expect(busyListenAddrs(new Error(msg))).toEqual(['/ip4/127.0.0.1/tcp/4101'])
    expect(busyListenAddrs(new Error('listen EADDRINUSE somewhere'))).toEqual(['(one of --listen)'])
    expect(busyListenAddrs(new Error('no transport for /ip6/::1'))).toEqual([])
  })
})

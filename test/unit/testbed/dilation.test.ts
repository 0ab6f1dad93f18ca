import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS } from '../../../src/net/index.js'
import { createRateGuard, resolveLimits } from '../../../src/net/limits.js'
import { BASE_TIMING, checkDilation, dilate, linkLatencyMs, suggestDilation, toRealMs, toSimulatedMs } from '../../../src/testbed/dilation.js'

describe('time dilation plan', () => {
  it('D = 1 is the libraries\' and swarmtune\'s own defaults', () => {
    const p = dilate({ factor: 1 })
    expect(p.timing.gossipsub).toEqual(BASE_TIMING.gossipsub)
    expect(p.timing.gossipsub?.heartbeatInterval).toBe(1000)
    expect(p.timing.connectionMonitor).toEqual({ pingInterval: 10_000 })
    expect(p.limits.bootstrapIntervalMs).toBe(DEFAULT_LIMITS.bootstrapIntervalMs)
    expect(p.limits.sessionTimeoutMs).toBe(DEFAULT_LIMITS.sessionTimeoutMs)
    expect(p.limits.gossipPerPeerPerSecond).toBe(DEFAULT_LIMITS.gossipPerPeerPerSecond)
    expect(p.limits.syncSessionsPerPeerPerMinute).toBe(DEFAULT_LIMITS.syncSessionsPerPeerPerMinute)
  })

  it('multiplies every duration by D and divides every rate by D', () => {
    const d = 8
    const p = dilate({ factor: d })
    for (const [k, v] of Object.entries(BASE_TIMING.gossipsub)) expect(p.timing.gossipsub?.[k]).toBe(v * d)
    for (const [k, v] of Object.entries(BASE_TIMING.scoreParams)) expect(p.timing.scoreParams?.[k]).toBe(v * d)
    for (const [k, v] of Object.entries(BASE_TIMING.topicScoreParams)) expect(p.timing.topicScoreParams?.[k]).toBe(v * d)
    for (const [k, v] of Object.entries(BASE_TIMING.connectionManager)) expect(p.timing.connectionManager?.[k]).toBe(v * d)
    expect(p.timing.connectionMonitor?.pingInterval).toBe(80_000)
    expect(p.timing.yamux?.keepAliveInterval).toBe(240_000)
    expect(p.timing.identify?.timeout).toBe(40_000)
    expect(p.limits.bootstrapIntervalMs).toBe(80_000)
    expect(p.limits.gossipPerPeerPerSecond).toBe(125)
    expect(p.limits.syncSessionsPerPeerPerMinute).toBe(30 / 8)
    expect(p.sync).toEqual({ timeoutMs: 80_000, intervalMs: 28_800_000 })
    // config values stay whole numbers ≥ 1 (config/schema.json)
    expect(p.trust.gossipPerPeerPerSecond).toBe(13)
    expect(dilate({ factor: 1000 }).trust.gossipPerPeerPerSecond).toBe(1)
  })

  it('a dilated sync rate under one session per minute still admits a late joiner\'s session (it refused all at D ≥ 31)', () => {
    for (const d of [16, 32, 64]) {
      const guard = createRateGuard(resolveLimits(dilate({ factor: d }).limits))
      expect(guard.admitSync?.('joiner')).toBe(true)
      expect(guard.admitGossip?.('joiner')).toBe(true)
    }
  })

  it('keeps counts in heartbeats untouched (they follow the heartbeat)', () => {
    const g = dilate({ factor: 4 }).timing.gossipsub ?? {}
    for (const k of ['mcacheLength', 'mcacheGossip', 'opportunisticGraftTicks', 'directConnectTicks', 'D', 'Dlo', 'Dhi']) expect(g[k]).toBeUndefined()
  })

  it('quiet timers turn the connection monitor and yamux keep-alive off instead of scaling them', () => {
    const p = dilate({ factor: 4, quietTimers: true })
    expect(p.timing.connectionMonitor).toEqual({ enabled: false })
    expect(p.timing.yamux).toEqual({ enableKeepAlive: false })
    expect(p.timing.gossipsub?.heartbeatInterval).toBe(4000)
  })

  it('refuses a factor below 1 or not a number, with a code', () => {
    for (const bad of [0, 0.5, -2, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => dilate({ factor: bad })).toThrow(expect.objectContaining({ code: 'E_SIM_DILATION' }))
    }
    expect(checkDilation(2.5)).toBe(2.5)
  })

  it('converts between real and simulated time', () => {
    expect(toSimulatedMs(4000, 4)).toBe(1000)
    expect(toRealMs(250, 16)).toBe(4000)
    expect(toSimulatedMs(toRealMs(123, 7), 7)).toBeCloseTo(123)
  })
})

describe('link latency draw', () => {
  const ids = Array.from({ length: 60 }, (_, i) => `peer-${i}`)

  it('is the same both ways, fixed per seed, and within [min, max]', () => {
    expect(linkLatencyMs('a', 'b', 1, 20, 200)).toBe(linkLatencyMs('b', 'a', 1, 20, 200))
    expect(linkLatencyMs('a', 'b', 1, 20, 200)).toBe(linkLatencyMs('a', 'b', 1, 20, 200))
    expect(linkLatencyMs('a', 'b', 1, 20, 200)).not.toBe(linkLatencyMs('a', 'b', 2, 20, 200))
    const all = ids.flatMap(a => ids.map(b => linkLatencyMs(a, b, 3, 20, 200)))
    expect(Math.min(...all)).toBeGreaterThanOrEqual(20)
    expect(Math.max(...all)).toBeLessThanOrEqual(200)
  })

  it('is log-uniform: the median is near √(min·max), not the midpoint', () => {
    const xs: number[] = []
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) xs.push(linkLatencyMs(ids[i], ids[j], 5, 20, 200))
    xs.sort((a, b) => a - b)
    const median = xs[Math.floor(xs.length / 2)]
    expect(median).toBeGreaterThan(55)
    expect(median).toBeLessThan(72)
  })

  it('is 0 with no latency, and refuses a bad range with a code', () => {
    expect(linkLatencyMs('a', 'b', 1, 0, 0)).toBe(0)
    expect(() => linkLatencyMs('a', 'b', 1, 0, 100)).toThrow(expect.objectContaining({ code: 'E_SIM_LATENCY' }))
    expect(() => linkLatencyMs('a', 'b', 1, 300, 100)).toThrow(expect.objectContaining({ code: 'E_SIM_LATENCY' }))
  })
})

describe('suggested dilation', () => {
  it('is the smallest whole D that keeps idle nodes within the core share', () => {
    // 1,000 nodes at 1.8 CPU-ms per node per simulated second: 1.8 cores in real time
    expect(suggestDilation(1.8, 1000, 0.2)).toBe(9)
    expect(suggestDilation(1.8, 1000, 1)).toBe(2)
    expect(suggestDilation(0.01, 100)).toBe(1)
    expect(() => suggestDilation(1, 100, 0)).toThrow(expect.objectContaining({ code: 'E_SIM_DILATION' }))
  })
})

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createHostCoordinator, defaultHostDir, HOST_LOCK_STALE_MS, LOCK_FILE, lockIsStale, parseBusyName, parseLock, pidAlive } from '../../../src/util/host-lock.js'
import { createActivity } from '../../../src/util/activity.js'

describe('host lock: pure parts', () => {
  it('reads lock files and busy marker names, and says when a lock is stale', () => {
    expect(parseLock('{"pid":12,"token":"ab","since":5}')).toEqual({ pid: 12, token: 'ab', since: 5 })
    expect(parseLock('{"pid":"12"}')).toBeUndefined()
    expect(parseLock('not json')).toBeUndefined()
    expect(parseBusyName('busy-123-0a1b')).toEqual({ pid: 123, token: '0a1b' })
    expect(parseBusyName('bench.lock')).toBeUndefined()
    const alive = (pid: number): boolean => pid === 1
    expect(lockIsStale({ pid: 1, token: 't', since: 0 }, 1000, alive)).toBe(false)
    expect(lockIsStale({ pid: 2, token: 't', since: 0 }, 1000, alive)).toBe(true)
    expect(lockIsStale({ pid: 1, token: 't', since: 0 }, HOST_LOCK_STALE_MS + 1, alive)).toBe(true)
    expect(lockIsStale(undefined, 0, alive)).toBe(true)
    expect(defaultHostDir('/tmp', 1000)).toBe('/tmp/swarmtune-host-1000')
    expect(pidAlive(process.pid)).toBe(true)
    expect(pidAlive(0)).toBe(false)
  })
})

describe('host coordinator', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-hostlock-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('one benchmark at a time on the host; the lock is free again after release', () => {
    const a = createHostCoordinator({ dir })
    const b = createHostCoordinator({ dir })
    const ra = a.tryBench()
    expect(ra).toBeDefined()
    expect(b.tryBench()).toBeUndefined()
    expect(a.tryBench()).toBeUndefined() // not re-entrant
    ra!()
    ra!() // idempotent
    const rb = b.tryBench()
    expect(rb).toBeDefined()
    expect(a.tryBench()).toBeUndefined()
    rb!()
    expect(readdirSync(dir)).toEqual([])
  })

  it('takes over the lock of a dead process, and one held too long', () => {
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 999_999, token: 'dead', since: Date.now() }))
    const a = createHostCoordinator({ dir, alive: pid => pid !== 999_999 })
    const ra = a.tryBench()
    expect(ra).toBeDefined()
    ra!()
    let clock = 0
    const b = createHostCoordinator({ dir, now: () => clock, staleMs: 1000 })
    const c = createHostCoordinator({ dir, now: () => clock, staleMs: 1000 })
    expect(b.tryBench()).toBeDefined()
    expect(c.tryBench()).toBeUndefined()
    clock = 2000
    const rc = c.tryBench()
    expect(rc).toBeDefined()
    // b's late release does not remove c's lock
    b.close()
    expect(createHostCoordinator({ dir, now: () => clock, staleMs: 1000 }).tryBench()).toBeUndefined()
    rc!()
  })

  it('a daemon serving marks the host busy for the others, not for itself; a dead one\'s marker is removed', () => {
    const a = createHostCoordinator({ dir })
    const b = createHostCoordinator({ dir })
    const activity = createActivity({ mark: a.markBusy })
    expect(b.othersBusy()).toBe(false)
    const e1 = activity.begin()
    const e2 = activity.begin()
    expect(b.othersBusy()).toBe(true)
    expect(a.othersBusy()).toBe(false)
    e1()
    expect(b.othersBusy()).toBe(true) // one task still runs
    e2()
    expect(b.othersBusy()).toBe(false)
    writeFileSync(join(dir, 'busy-999999-abcd'), '1')
    const c = createHostCoordinator({ dir, alive: pid => pid !== 999_999 })
    expect(c.othersBusy()).toBe(false)
    expect(readdirSync(dir)).toEqual([])
    activity.begin()
    a.close()
    expect(b.othersBusy()).toBe(false)
  })
})

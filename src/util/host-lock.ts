import { randomBytes } from 'node:crypto'
import { lstatSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { SwarmtuneError } from './errors.js'

/**
 * Measurements on one machine must not disturb each other (issue #17 item 6): several daemons on
 * one host (the testbed, or a user running two) share its cores, so a benchmark cell measured
 * while another daemon benchmarks or serves inference measures the neighbour as much as the
 * method (measured in the learn scenario: a cell's median moved by factors of 1.5-4 against the
 * same cell measured alone). Daemons of one host coordinate through a directory:
 *
 * - `bench.lock`: one benchmark at a time. Created exclusively (O_EXCL) by the sweep for one cell
 *   and removed after it; a lock whose process is gone, or older than `staleMs`, is taken over.
 * - `busy-<pid>-<token>`: one per daemon while it runs inference (created when its first task
 *   begins, removed when its last ends). The sweep does not start a cell while another daemon's
 *   marker exists and aborts a running cell when one appears. A dead process's marker is removed.
 *
 * The directory defaults to `<os.tmpdir()>/swarmtune-host-<uid>` (config `bench.hostLock.dir`):
 * every daemon of one user on the machine. Files are tiny and written synchronously (a few tens
 * of microseconds per served batch).
 */

export const LOCK_FILE = 'bench.lock'
const BUSY_PREFIX = 'busy-'
/** a benchmark lock older than this is taken over even when its process lives (a cell takes minutes at most) */
export const HOST_LOCK_STALE_MS = 15 * 60_000

export interface LockInfo { pid: number, token: string, since: number }

/** The default coordination directory of this user on this machine. */
export function defaultHostDir (base = tmpdir(), uid: number | string = userUid()): string {
  return join(base, `swarmtune-host-${uid}`)
}

function userUid (): number | string {
  try { return userInfo().uid >= 0 ? userInfo().uid : userInfo().username } catch { return 'user' }
}

/** Whether a process lives (signal 0: EPERM means it does, under another user). */
export function pidAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A lock file's content, or undefined when it is not one. Pure. */
export function parseLock (text: string): LockInfo | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockInfo>
    return typeof o.pid === 'number' && typeof o.token === 'string' && typeof o.since === 'number' ? { pid: o.pid, token: o.token, since: o.since } : undefined
  } catch {
    return undefined
  }
}

/** Whether a held lock may be taken over: unreadable, its process gone, or older than `staleMs`. Pure given `alive`. */
export function lockIsStale (info: LockInfo | undefined, now: number, alive: (pid: number) => boolean, staleMs = HOST_LOCK_STALE_MS): boolean {
  return info == null || !alive(info.pid) || now - info.since > staleMs
}

/** A busy marker's pid and token from its file name, or undefined. Pure. */
export function parseBusyName (name: string): { pid: number, token: string } | undefined {
  const m = /^busy-(\d+)-([0-9a-f]+)$/.exec(name)
  return m != null ? { pid: Number(m[1]), token: m[2] } : undefined
}

export interface HostCoordinator {
  readonly dir: string
  /** take the host's benchmark lock; undefined when another live holder has it; throws (coded) when the directory is unusable */
  tryBench: () => (() => void) | undefined
  /** another daemon of this host (another process, or another node of this one) runs inference now */
  othersBusy: () => boolean
  /** mark this daemon busy with inference until the returned function is called (nested marks count) */
  markBusy: () => () => void
  /** remove this daemon's files (stop) */
  close: () => void
}

export interface HostCoordinatorInit {
  dir?: string
  staleMs?: number
  now?: () => number
  pid?: number
  alive?: (pid: number) => boolean
}

export function createHostCoordinator (init: HostCoordinatorInit = {}): HostCoordinator {
  const dir = init.dir ?? defaultHostDir()
  const now = init.now ?? Date.now
  const pid = init.pid ?? process.pid
  const alive = init.alive ?? pidAlive
  const token = randomBytes(6).toString('hex')
  const lockPath = join(dir, LOCK_FILE)
  const busyPath = join(dir, `${BUSY_PREFIX}${pid}-${token}`)
  let busy = 0
  let holding = false
  let made = false
  const ensureDir = (): void => {
    if (made) return
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    // another user's directory (or a link to one) could hold this user's sweeps back: refuse it
    const st = lstatSync(dir)
    const uid = process.getuid?.()
    if (!st.isDirectory() || (uid != null && st.uid !== uid)) throw new SwarmtuneError('E_HOST_LOCK_DIR', `host lock directory ${dir} is not a directory of this user`)
    made = true
  }
  const unlink = (p: string): void => { try { unlinkSync(p) } catch {} }
  const readLock = (): LockInfo | undefined => { try { return parseLock(readFileSync(lockPath, 'utf8')) } catch { return undefined } }

  function create (): boolean {
    try {
      writeFileSync(lockPath, JSON.stringify({ pid, token, since: now() }), { flag: 'wx', mode: 0o600 })
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err
    }
  }

  function release (): void {
    if (!holding) return
    holding = false
    // only our own lock (a taker may have replaced a lock it judged stale)
    if (readLock()?.token === token) unlink(lockPath)
  }

  return {
    dir,
    tryBench () {
      if (holding) return undefined
      ensureDir()
      if (!create()) {
        const held = readLock()
        if (!lockIsStale(held, now(), alive, init.staleMs)) return undefined
        // a dead (or hung) holder's lock: removed only if it is still the one judged stale
        const again = readLock()
        if (again?.token !== held?.token) return undefined
        unlink(lockPath)
        if (!create()) return undefined
      }
      // two takers of one stale lock: the file says who won
      if (readLock()?.token !== token) return undefined
      holding = true
      let done = false
      return () => { if (!done) { done = true; release() } }
    },
    othersBusy () {
      let names: string[]
      try { ensureDir(); names = readdirSync(dir) } catch { return false }
      let any = false
      for (const n of names) {
        const b = parseBusyName(n)
        if (b == null || b.token === token) continue
        if (alive(b.pid)) any = true
        else unlink(join(dir, n))
      }
      return any
    },
    markBusy () {
      if (busy++ === 0) {
        try { ensureDir(); writeFileSync(busyPath, String(now()), { mode: 0o600 }) } catch {}
      }
      let ended = false
      return () => {
        if (ended) return
        ended = true
        if (--busy === 0) unlink(busyPath)
      }
    },
    close () {
      release()
      busy = 0
      unlink(busyPath)
    }
  }
}

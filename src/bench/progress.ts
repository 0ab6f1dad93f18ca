/**
 * Progress for long operations: a redrawn bar with ETA on a TTY, one plain line per step
 * otherwise (logs, CI, pipes). Writes to stderr by default so `--json` stdout stays clean.
 */
export interface ProgressStream {
  write(s: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface Progress {
  /** advance by `by` steps, with a short label of what just finished */
  tick(label: string, by?: number): void
  /** a message that must stay visible (e.g. a skipped cell) */
  note(message: string): void
  /** change the total (e.g. when work is discovered to be skippable) */
  setTotal(total: number): void
  done(): void
}

export interface ProgressOptions {
  total: number
  title?: string
  stream?: ProgressStream
  /** force TTY rendering on or off */
  tty?: boolean
  /** injectable clock, for tests */
  now?: () => number
  /** disable all output */
  silent?: boolean
}

export function formatDuration (ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

/** Remaining time from the mean time per finished step. */
export function etaMs (elapsedMs: number, done: number, total: number): number {
  if (done <= 0) return NaN
  return elapsedMs / done * Math.max(0, total - done)
}

export function createProgress (opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr
  // a pseudo-terminal that reports 0 columns cannot hold a bar: plain lines then
  const tty = opts.tty ?? (stream.isTTY === true && (stream.columns ?? 0) > 0)
  const now = opts.now ?? Date.now
  const start = now()
  let total = Math.max(0, opts.total)
  let done = 0
  let drawn = false
  const title = opts.title != null ? `${opts.title} ` : ''

  const line = (label: string): string => {
    const elapsed = now() - start
    const eta = etaMs(elapsed, done, total)
    return `${title}${done}/${total} ${label} elapsed ${formatDuration(elapsed)} eta ${formatDuration(eta)}`
  }

  const draw = (label: string): void => {
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 60))
    const frac = total === 0 ? 1 : Math.min(1, done / total)
    const fill = Math.round(frac * width)
    const bar = `[${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}%`
    const text = `${bar} ${line(label)}`.slice(0, Math.max(20, (stream.columns ?? 120) - 1))
    stream.write(`\r\x1b[2K${text}`)
    drawn = true
  }

  return {
    tick (label, by = 1) {
      done += by
      if (opts.silent === true) return
      if (tty) draw(label)
      else stream.write(line(label) + '\n')
    },
    note (message) {
      if (opts.silent === true) return
      if (tty && drawn) stream.write('\r\x1b[2K')
      stream.write(message + '\n')
      if (tty && drawn) draw('')
    },
    setTotal (t) { total = Math.max(0, t) },
    done () {
      if (opts.silent === true) return
      if (tty && drawn) stream.write('\n')
    }
  }
}

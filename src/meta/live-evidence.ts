import type { RecordStore } from '../store/types.js'
import { newestRecords } from '../store/query.js'
import type { RecordEventDetail, RecordEvents } from '../contracts/records.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { assignReference, buildDataset, type HistoryBody, type Task } from './dataset.js'
import { FixedRule } from './safe-default.js'
import { knownShapes, type KnownShape } from './shape-match.js'

/**
 * The fixed rule from the live evidence (issue #17 item 6): per-workload-best decided from the
 * store's current benchmark records of one machine (all authors), not only from the snapshot
 * trained minutes ago. Peers holding the same records therefore give the same answer for a known
 * shape, whatever snapshot each trained when; measured in the learn scenario, the three daemons
 * served different methods for one task type because each decided from its own last snapshot
 * (docs/BENCHMARKS.md § Learning curve). The learner (and its trust checks) stay the snapshot's.
 *
 * A cell is the median of its ok records (dataset.ts), compared pairwise within a workload as
 * the snapshot's rule does. Where a workload has at least MIN_CELL_RECORDS records on two or
 * more methods, a method measured fewer times does not take part: on a shared machine one record
 * moves a cell by tens of percent, and a single lucky run must not outrank a cell measured many
 * times (the sweep repeats the near-ties, so a real contender soon has its second record).
 */

/** Records a cell needs to decide over cells that have that many, when at least two methods of the workload have. */
export const MIN_CELL_RECORDS = 2
/** Newest benchmark records of a machine the view reads (the sweep reads as many: bench/service.ts). */
export const LIVE_MAX_RECORDS = 5000
/** Machines kept in the view at once (a serving node asks about its own; recommend may name others). */
export const LIVE_MAX_HARDWARE = 8

/** One machine's live evidence: the fixed rule over its workloads and its benchmark shapes. */
export interface LiveView {
  hardwareId: string
  fixed: FixedRule
  shapes: KnownShape[]
  /** benchmark records read */
  records: number
  builtAt: number
}

/**
 * Drop the cells measured fewer than `min` times from a task when at least two of its cells have
 * `min` records (see above); the reference is chosen again. Returns the task, changed in place.
 */
export function dropThinCells (task: Task, min = MIN_CELL_RECORDS): Task {
  const thick = [...task.cells.values()].filter(c => c.records >= min)
  if (thick.length < 2 || thick.length === task.cells.size) return task
  for (const [m, c] of task.cells) if (c.records < min) task.cells.delete(m)
  if (task.baseline != null && !task.cells.has(task.baseline.method)) task.baseline = undefined
  task.reference = undefined
  task.referenceRule = undefined
  assignReference(task)
  return task
}

/** The live view of one machine from its benchmark records (bodies of other machines or sources are ignored). Pure. */
export function liveViewOf (hardwareId: string, bodies: readonly HistoryBody[], now = Date.now(), min = MIN_CELL_RECORDS): LiveView {
  const mine = bodies.filter(b => b.hardware.id === hardwareId && (b.source == null || b.source === 'benchmark'))
  const tasks = buildDataset(mine).tasks.map(t => dropThinCells(t, min))
  return { hardwareId, fixed: FixedRule.fromTasks(tasks), shapes: knownShapes(tasks), records: mine.length, builtAt: now }
}

/** What the selector reads from the live evidence (selector.ts): a machine's view, if built, and a version that changes with every rebuild. */
export interface LiveEvidenceSource {
  view: (hardwareId: string) => LiveView | undefined
  version: () => number
}

export interface LiveEvidence extends LiveEvidenceSource {
  /** the views built (status): machine, records read, when */
  status: () => Array<{ hardwareId: string, records: number, builtAt: number }>
  start: () => void
  stop: () => void
  /** rebuild every view asked for now, waiting for it (tests, and a caller that needs it current) */
  refresh: () => Promise<void>
}

export interface LiveEvidenceInit {
  /** least ms between two rebuilds of one machine's view; a rebuild happens only after its records changed */
  refreshMs: number
  maxRecords?: number
}

interface Entry { view?: LiveView, dirty: boolean, building?: Promise<void>, timer?: NodeJS.Timeout, lastBuild: number, used: number }

/**
 * The views, built on first use per machine and rebuilt at most every `refreshMs` after a
 * benchmark record of that machine arrives (an indexed store query of its newest records; no
 * store scan on the request path: `view` answers from memory and schedules the rebuild).
 */
export function createLiveEvidence (init: LiveEvidenceInit, components: { store: Pick<RecordStore, 'query'>, events: RecordEvents }): LiveEvidence {
  const logger = log('meta:live')
  const entries = new Map<string, Entry>()
  let version = 0
  let stopped = true
  const max = init.maxRecords ?? LIVE_MAX_RECORDS

  async function read (hardwareId: string): Promise<HistoryBody[]> {
    const out: HistoryBody[] = []
    for await (const r of newestRecords(components.store, { hardwareId, source: 'benchmark' }, max)) out.push(r.body)
    return out
  }

  async function build (hardwareId: string, e: Entry): Promise<void> {
    e.dirty = false
    e.lastBuild = Date.now()
    try {
      const view = liveViewOf(hardwareId, await read(hardwareId))
      if (stopped) return
      e.view = view
      version++
    } catch (err) {
      logger.error('live evidence for %s: %s', hardwareId, errorMessage(err))
    }
  }

  function schedule (hardwareId: string, e: Entry): void {
    if (stopped || !e.dirty || e.building != null || e.timer != null) return
    const wait = Math.max(0, e.lastBuild + init.refreshMs - Date.now())
    const run = (): void => {
      e.timer = undefined
      e.building = build(hardwareId, e).finally(() => { e.building = undefined; schedule(hardwareId, e) })
    }
    if (wait === 0) run()
    else { e.timer = setTimeout(run, wait); e.timer.unref() }
  }

  const onRecord = (ev: Event): void => {
    const body = (ev as CustomEvent<RecordEventDetail>).detail?.record?.body
    if (body == null || body.source !== 'benchmark') return
    const e = entries.get(body.hardware.id)
    if (e == null) return
    e.dirty = true
    schedule(body.hardware.id, e)
  }

  return {
    view (hardwareId) {
      let e = entries.get(hardwareId)
      if (e == null) {
        if (entries.size >= LIVE_MAX_HARDWARE) {
          // the least recently asked machine makes room
          let oldest: string | undefined
          for (const [k, x] of entries) if (oldest == null || x.used < (entries.get(oldest) as Entry).used) oldest = k
          if (oldest != null) { clearTimeout(entries.get(oldest)?.timer); entries.delete(oldest) }
        }
        entries.set(hardwareId, e = { dirty: true, lastBuild: 0, used: 0 })
        schedule(hardwareId, e)
      }
      e.used = Date.now()
      return e.view
    },
    version: () => version,
    status: () => [...entries.values()].flatMap(e => e.view != null ? [{ hardwareId: e.view.hardwareId, records: e.view.records, builtAt: e.view.builtAt }] : []),
    start () {
      stopped = false
      components.events.addEventListener('record', onRecord)
    },
    stop () {
      stopped = true
      components.events.removeEventListener('record', onRecord)
      for (const e of entries.values()) clearTimeout(e.timer)
      entries.clear()
    },
    async refresh () {
      await Promise.all([...entries].map(async ([k, e]) => {
        await e.building
        clearTimeout(e.timer)
        e.timer = undefined
        await build(k, e)
      }))
    }
  }
}

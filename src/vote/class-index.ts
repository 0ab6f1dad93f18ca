import type { HardwareFingerprint, ModelDescriptor, RecordBody } from '../records/types.js'
import { classBase } from './task-class.js'
import { normalizeHistoryBody } from '../meta/legacy-records.js'

/**
 * In-memory index of the history by task class (objective-free "base" key), kept up to date from
 * record events: how many records and distinct authors each class has (the `evidence` of an
 * answer), the node's own successful measurements per class (reputation and the cold-start
 * threshold), a representative task per class (what the node votes on), and every model
 * descriptor seen (to resolve a model named by id or name). Bounded: at most `maxClasses`
 * classes, `maxOwnPerClass` own measurements per class (the most recent).
 */
export type OwnMeasurement = Pick<RecordBody, 'result' | 'hardware' | 'method' | 'timestamp'>

export interface ClassEntry {
  base: string
  records: number
  authors: Set<string>
  /** the node's own successful records in this class, oldest first */
  own: OwnMeasurement[]
  ownTotal: number
  /** the most recent record's task (what a vote on this class is about) */
  task: { hardware: HardwareFingerprint, model: ModelDescriptor, workload: RecordBody['workload'] }
  lastTimestamp: number
}

export interface ClassIndexOptions {
  self: string
  maxClasses?: number
  maxOwnPerClass?: number
}

export class ClassIndex {
  private readonly classes = new Map<string, ClassEntry>()
  private readonly modelsById = new Map<string, ModelDescriptor>()
  private readonly modelsByName = new Map<string, ModelDescriptor>()
  readonly self: string
  private readonly maxClasses: number
  private readonly maxOwn: number
  total = 0

  constructor (opts: ClassIndexOptions) {
    this.self = opts.self
    this.maxClasses = opts.maxClasses ?? 20_000
    this.maxOwn = opts.maxOwnPerClass ?? 256
  }

  /** Add one record body; returns its class base key (undefined when the index is full). */
  add (record: RecordBody): string | undefined {
    // records of older releases under the model and method ids the current code uses (meta/legacy-records.ts)
    const b = normalizeHistoryBody(record)
    this.total++
    if (!this.modelsById.has(b.model.id)) {
      this.modelsById.set(b.model.id, b.model)
      if (!this.modelsByName.has(b.model.name)) this.modelsByName.set(b.model.name, b.model)
    }
    const base = classBase(b.model.id, b.workload.features, b.hardware.backend)
    let e = this.classes.get(base)
    if (e == null) {
      if (this.classes.size >= this.maxClasses) return undefined
      e = { base, records: 0, authors: new Set(), own: [], ownTotal: 0, task: { hardware: b.hardware, model: b.model, workload: b.workload }, lastTimestamp: 0 }
      this.classes.set(base, e)
    }
    e.records++
    e.authors.add(b.author)
    if (b.timestamp >= e.lastTimestamp) {
      e.lastTimestamp = b.timestamp
      e.task = { hardware: b.hardware, model: b.model, workload: b.workload }
    }
    if (b.author === this.self && b.result.ok && (b.source === 'benchmark' || b.source === 'serving')) {
      e.own.push({ result: b.result, hardware: b.hardware, method: b.method, timestamp: b.timestamp })
      e.ownTotal++
      if (e.own.length > this.maxOwn) e.own.shift()
    }
    return base
  }

  get (base: string): ClassEntry | undefined {
    return this.classes.get(base)
  }

  entries (): ClassEntry[] {
    return [...this.classes.values()]
  }

  /** register a model this node serves (so requests can name it before any record exists) */
  addModel (m: ModelDescriptor): void {
    this.modelsById.set(m.id, m)
    this.modelsByName.set(m.name, m)
  }

  model (idOrName: string): ModelDescriptor | undefined {
    return this.modelsById.get(idOrName) ?? this.modelsByName.get(idOrName)
  }

  evidence (base: string): { records: number, authors: number } {
    const e = this.classes.get(base)
    return { records: e?.records ?? 0, authors: e?.authors.size ?? 0 }
  }

  /** own successful measurements in a class and how many distinct methods they cover */
  ownEvidence (base: string): { records: number, methods: number } {
    const e = this.classes.get(base)
    if (e == null) return { records: 0, methods: 0 }
    return { records: e.ownTotal, methods: new Set(e.own.map(o => o.method.id)).size }
  }
}

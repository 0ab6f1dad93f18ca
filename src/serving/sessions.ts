import { resolveModel as resolveModelSpec, describeGguf } from '../engine/models.js'
import type { Engine, EngineSession, Method, ModelSpec } from '../engine/types.js'
import type { ModelDescriptor } from '../records/types.js'
import type { ServingConfig } from './types.js'

export interface ResolvedModel { spec: ModelSpec, descriptor: ModelDescriptor }

export interface EngineSessionsInit {
  config: Pick<ServingConfig, 'dataDir' | 'engine'>
  engine: () => Promise<Engine>
  /** sessions kept open (model × method), least recently used closed first */
  maxSessions: number
  /** told of each model once resolved (the committee's class index learns its descriptor) */
  onModel?: (descriptor: ModelDescriptor) => void
}

/** Engine sessions cached per model × method, and the models' specs resolved once per name. */
export interface EngineSessions {
  modelSpec: (name: string) => Promise<ResolvedModel>
  /** the open session of a model and method, opened on first use */
  open: (name: string, spec: ModelSpec, method: Method) => Promise<EngineSession>
  /** tokenizer of a model if a session of it is open (recommend must not wait for a model to load) */
  tokenizerFor: (name: string) => ((text: string) => number[]) | undefined
  size: () => number
  closeAll: () => Promise<void>
}

interface SessionEntry { session: Promise<EngineSession>, used: number, ready?: EngineSession }

export function createEngineSessions (init: EngineSessionsInit): EngineSessions {
  const { config } = init
  const sessions = new Map<string, SessionEntry>()
  const specs = new Map<string, Promise<ResolvedModel>>()

  async function modelSpec (name: string): Promise<ResolvedModel> {
    let p = specs.get(name)
    if (p == null) {
      p = (async () => {
        const spec = await resolveModelSpec(config, name, config.dataDir)
        const descriptor = describeGguf(spec.path, name)
        init.onModel?.(descriptor)
        return { spec, descriptor }
      })()
      p.catch(() => { specs.delete(name) })
      specs.set(name, p)
    }
    return await p
  }

  async function open (name: string, spec: ModelSpec, method: Method): Promise<EngineSession> {
    const key = `${name}\n${method.id}`
    const hit = sessions.get(key)
    if (hit != null) {
      hit.used = Date.now()
      return await hit.session
    }
    while (sessions.size >= init.maxSessions) {
      const [oldKey, old] = [...sessions.entries()].sort((a, b) => a[1].used - b[1].used)[0]
      sessions.delete(oldKey)
      old.session.then(async s => { await s.close() }).catch(() => {})
    }
    const entry: SessionEntry = { session: init.engine().then(async e => await e.open(spec, method)), used: Date.now() }
    entry.session.then(x => { entry.ready = x }, () => { if (sessions.get(key) === entry) sessions.delete(key) })
    sessions.set(key, entry)
    return await entry.session
  }

  function tokenizerFor (name: string): ((text: string) => number[]) | undefined {
    // any open session of the model: vocabularies do not depend on the method
    for (const [key, s] of sessions) {
      if (key.startsWith(`${name}\n`) && s.ready != null) return s.ready.tokenize.bind(s.ready)
    }
    return undefined
  }

  async function closeAll (): Promise<void> {
    for (const s of sessions.values()) {
      try { await (await s.session).close() } catch {}
    }
    sessions.clear()
  }

  return { modelSpec, open, tokenizerFor, size: () => sessions.size, closeAll }
}

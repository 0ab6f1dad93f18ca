import { hardwareFingerprint } from '../engine/hardware.js'
import type { Engine } from '../engine/types.js'
import type { HardwareFingerprint } from '../records/types.js'
import type { ServingConfig } from './types.js'

/** The engine serving runs on, and this node's hardware fingerprint as recorded and advised on. */
export interface ServingEngine {
  /** the engine, created on first use */
  get: () => Promise<Engine>
  /** the fingerprint of the loaded engine (loads it) */
  hardware: () => Promise<HardwareFingerprint>
  /** own hardware for recommend answers without loading the engine */
  hardwareForAdvice: () => HardwareFingerprint
  /** close the engine if serving created it (a shared one is closed by its owner) */
  close: () => Promise<void>
}

/** `shared`: the node's engine (shared with the bench service); without it, a llama.cpp engine of its own. */
export function createServingEngine (config: Pick<ServingConfig, 'engine' | 'hardware'>, shared?: () => Promise<Engine>): ServingEngine {
  let enginePromise: Promise<Engine> | undefined
  let ownHardware: HardwareFingerprint | undefined
  let guessedHardware: HardwareFingerprint | undefined

  async function get (): Promise<Engine> {
    if (shared != null) return await shared()
    enginePromise ??= import('../engine/llama-engine.js').then(async m => await m.createLlamaEngine({ gpu: config.engine.gpu, threads: config.engine.threads }))
    enginePromise.catch(() => { enginePromise = undefined })
    return await enginePromise
  }

  async function hardware (): Promise<HardwareFingerprint> {
    if (ownHardware != null) return ownHardware
    const e = await get()
    ownHardware = hardwareFingerprint({ backend: e.backend, gpus: e.gpus, threads: Math.max(1, config.engine.threads), pricePerHour: config.hardware.pricePerHour, publish: config.engine.publishHardware })
    return ownHardware
  }

  /** The engine's fingerprint once loaded, else one from config (CPU unless a GPU backend is configured). */
  function hardwareForAdvice (): HardwareFingerprint {
    if (ownHardware != null) return ownHardware
    const backend = config.engine.gpu === 'auto' ? 'cpu' : config.engine.gpu
    // probing the system hashes a fingerprint: once, not per request
    guessedHardware ??= hardwareFingerprint({ backend, gpus: [], threads: Math.max(1, config.engine.threads), pricePerHour: config.hardware.pricePerHour, publish: config.engine.publishHardware })
    return guessedHardware
  }

  async function close (): Promise<void> {
    if (shared == null && enginePromise != null) {
      try { await (await enginePromise).close() } catch {}
    }
  }

  return { get, hardware, hardwareForAdvice, close }
}

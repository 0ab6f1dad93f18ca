import { cpus, totalmem } from 'node:os'
import type { Backend, GpuInfo, HardwareFingerprint } from '../records/types.js'
import { stableId } from '../records/stable-id.js'

/**
 * Where a measurement was taken. The id hashes everything except `threads` (a per-measurement
 * choice) and `pricePerHour` (an operator's declaration that may change), so one machine keeps
 * one id across runs and across thread settings.
 */
export interface SystemProbe {
  cpuModel: string
  cores: number
  ramMiB: number
  os: string
}

export function systemProbe (): SystemProbe {
  const list = cpus()
  // some VMs report an empty or padded model string
  const model = (list[0]?.model ?? '').replace(/\s+/g, ' ').trim()
  return {
    cpuModel: (model === '' ? 'unknown CPU' : model).slice(0, 200),
    cores: Math.max(1, list.length),
    ramMiB: Math.round(totalmem() / (1024 * 1024)),
    os: `${process.platform}-${process.arch}`
  }
}

export interface FingerprintInit {
  backend: Backend
  gpus: readonly GpuInfo[]
  /** CPU threads the engine uses for this measurement */
  threads: number
  /** hardware.pricePerHour from config */
  pricePerHour?: number
}

export function hardwareId (fp: Omit<HardwareFingerprint, 'id' | 'threads' | 'pricePerHour'>): string {
  const { cpuModel, cores, ramMiB, gpus, backend, os } = fp
  return stableId({ cpuModel, cores, ramMiB, gpus: gpus.map(g => ({ name: g.name, vramMiB: g.vramMiB })), backend, os })
}

export function hardwareFingerprint (init: FingerprintInit, probe: SystemProbe = systemProbe()): HardwareFingerprint {
  const gpus = init.gpus.map(g => ({ name: g.name.slice(0, 200), vramMiB: Math.round(g.vramMiB) }))
  const base = { cpuModel: probe.cpuModel, cores: probe.cores, ramMiB: probe.ramMiB, gpus, backend: init.backend, os: probe.os }
  return {
    id: hardwareId(base),
    ...base,
    threads: Math.max(1, Math.round(init.threads)),
    pricePerHour: init.pricePerHour ?? 0
  }
}

/** Short human label for file names, e.g. "amd-epyc-2c-cpu". */
export function hardwareLabel (fp: Pick<HardwareFingerprint, 'cpuModel' | 'cores' | 'backend' | 'gpus'>): string {
  const cpu = fp.cpuModel.toLowerCase().replace(/\(r\)|\(tm\)|processor|cpu|@.*$/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 32)
  const gpu = fp.gpus.length > 0 ? '-' + fp.gpus[0].name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) : ''
  return `${cpu || 'cpu'}-${fp.cores}c-${fp.backend}${gpu}`
}

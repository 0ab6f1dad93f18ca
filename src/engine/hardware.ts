import { cpus, totalmem } from 'node:os'
import type { Backend, GpuInfo, HardwareFingerprint } from '../records/types.js'
import { stableId } from '../records/stable-id.js'
import { CLASS_PREFIX, lookupDevice, type DeviceSpec } from './device-specs.js'

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
  /** engine.publishHardware from config: `capability` publishes a capability class (default `full`) */
  publish?: PublishHardware
}

export function hardwareId (fp: Omit<HardwareFingerprint, 'id' | 'threads' | 'pricePerHour'>): string {
  const { cpuModel, cores, ramMiB, gpus, backend, os } = fp
  return stableId({ cpuModel, cores, ramMiB, gpus: gpus.map(g => ({ name: g.name, vramMiB: g.vramMiB })), backend, os })
}

export function hardwareFingerprint (init: FingerprintInit, probe: SystemProbe = systemProbe()): HardwareFingerprint {
  const gpus = init.gpus.map(g => ({ name: g.name.slice(0, 200), vramMiB: Math.round(g.vramMiB) }))
  const base = { cpuModel: probe.cpuModel, cores: probe.cores, ramMiB: probe.ramMiB, gpus, backend: init.backend, os: probe.os }
  const fp = {
    id: hardwareId(base),
    ...base,
    threads: Math.max(1, Math.round(init.threads)),
    pricePerHour: init.pricePerHour ?? 0
  }
  return init.publish === 'capability' ? capabilityClass(fp) : fp
}

/**
 * What this node's own records, serving records and recommend answers say about its machine
 * (config `engine.publishHardware`): `full` the names and sizes as probed, `capability` only a
 * capability class (capabilityClass below).
 */
export type PublishHardware = 'full' | 'capability'
export const PUBLISH_HARDWARE_MODES: readonly PublishHardware[] = ['full', 'capability']

/** Smallest bucket; anything under it (and 0, unknown) is 0. */
const MIN_BUCKET = 2 ** -10

/** The power of two nearest to `x` on a log scale; 0 for 0, negative or non-finite. */
export function log2Bucket (x: number): number {
  if (!Number.isFinite(x) || x < MIN_BUCKET) return 0
  return 2 ** Math.round(Math.log2(x))
}

/**
 * The class name of one device: its spec-sheet figures (device-specs.ts), each bucketed, e.g.
 * `class:gpu-bw2048-tf1024-mem64` (GB/s, FP16 TFLOPS, GiB). A device the table does not know is
 * `class:gpu` or `class:cpu`: it stays unknown to every reader, as its name would have been.
 */
export function deviceClassName (name: string, kind: DeviceSpec['kind']): string {
  const spec = lookupDevice(name)
  if (spec == null) return `${CLASS_PREFIX}${kind}`
  return `${CLASS_PREFIX}${spec.kind}-bw${log2Bucket(spec.memBwGBs)}-tf${log2Bucket(spec.fp16Tflops)}-mem${log2Bucket(spec.memGiB)}`
}

/** MiB rounded to a power-of-two number of GiB (0 stays 0 = unknown). */
function mibBucket (mib: number): number {
  return Math.round(log2Bucket(mib / 1024) * 1024)
}

/**
 * A fingerprint that names no CPU model, GPU name or exact memory size: device names become
 * their capability class (deviceClassName), cores, RAM and VRAM are bucketed to powers of two.
 * Backend, device count, OS, threads and price stay (they are choices or coarse already). The
 * result is a valid v1 hardware block (current peers accept it), the meta-model reads the
 * bucketed capability through lookupDevice, and the id hashes the class, so every machine of
 * one class shares an id. Idempotent. Pure.
 */
export function capabilityClass (fp: HardwareFingerprint): HardwareFingerprint {
  const base = {
    cpuModel: deviceClassName(fp.cpuModel, 'cpu'),
    cores: Math.max(1, log2Bucket(fp.cores)),
    ramMiB: mibBucket(fp.ramMiB),
    gpus: fp.gpus.map(g => ({ name: deviceClassName(g.name, 'gpu'), vramMiB: mibBucket(g.vramMiB) })),
    backend: fp.backend,
    os: fp.os
  }
  return { id: hardwareId(base), ...base, threads: fp.threads, pricePerHour: fp.pricePerHour }
}

/** Short human label for file names, e.g. "amd-epyc-2c-cpu". */
export function hardwareLabel (fp: Pick<HardwareFingerprint, 'cpuModel' | 'cores' | 'backend' | 'gpus'>): string {
  const cpu = fp.cpuModel.toLowerCase().replace(/\(r\)|\(tm\)|processor|cpu|@.*$/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 32)
  const gpu = fp.gpus.length > 0 ? '-' + fp.gpus[0].name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) : ''
  return `${cpu || 'cpu'}-${fp.cores}c-${fp.backend}${gpu}`
}

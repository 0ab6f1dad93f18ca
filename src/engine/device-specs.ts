/**
 * What a device can do, from published spec sheets: memory bandwidth decides decode speed, peak
 * tensor throughput decides prefill, memory size decides what fits. The meta-model reads these
 * instead of device names, so a machine nobody measured still has a position among the others
 * (zero-shot). Pure: a name in, a row or `undefined` out.
 *
 * Figures are per device, vendor spec sheets, dense (no sparsity): `fp16Tflops` is FP16/BF16
 * tensor/matrix throughput, `memBwGBs` the memory bandwidth in GB/s, `memGiB` the device
 * memory (unified memory for Apple). Server CPUs: theoretical DRAM bandwidth of a fully
 * populated socket (channels × transfer rate × 8 bytes); their compute is left 0 (unknown).
 * A name that matches no row is "unknown" (the `hw.specKnown` feature is 0 then).
 */
export interface DeviceSpec {
  /** canonical label */
  name: string
  kind: 'gpu' | 'accelerator' | 'cpu' | 'soc'
  memBwGBs: number
  fp16Tflops: number
  memGiB: number
  /** where the figures come from */
  source: string
}

interface Row extends DeviceSpec { match: RegExp }

const NV = 'NVIDIA data sheet'
const AMD = 'AMD Instinct/Radeon spec page'
const APPLE = 'Apple newsroom / tech specs (GPU FP32 TFLOPS; FP16 same rate)'

// Order matters: more specific patterns first (H100 NVL before H100, A100 40GB before A100).
const ROWS: Row[] = [
  { match: /gh200/i, name: 'NVIDIA GH200 (H100 96GB)', kind: 'gpu', memBwGBs: 4000, fp16Tflops: 989, memGiB: 96, source: NV },
  { match: /h200/i, name: 'NVIDIA H200', kind: 'gpu', memBwGBs: 4800, fp16Tflops: 989, memGiB: 141, source: NV },
  { match: /h100.*nvl/i, name: 'NVIDIA H100 NVL', kind: 'gpu', memBwGBs: 3900, fp16Tflops: 835, memGiB: 94, source: NV },
  { match: /h100.*pcie/i, name: 'NVIDIA H100 PCIe', kind: 'gpu', memBwGBs: 2000, fp16Tflops: 756, memGiB: 80, source: NV },
  { match: /h100/i, name: 'NVIDIA H100 SXM', kind: 'gpu', memBwGBs: 3350, fp16Tflops: 989, memGiB: 80, source: NV },
  { match: /a100.*40\s*gb/i, name: 'NVIDIA A100 40GB', kind: 'gpu', memBwGBs: 1555, fp16Tflops: 312, memGiB: 40, source: NV },
  { match: /a100.*pcie/i, name: 'NVIDIA A100 PCIe 80GB', kind: 'gpu', memBwGBs: 1935, fp16Tflops: 312, memGiB: 80, source: NV },
  { match: /a100/i, name: 'NVIDIA A100 SXM 80GB', kind: 'gpu', memBwGBs: 2039, fp16Tflops: 312, memGiB: 80, source: NV },
  { match: /l40s/i, name: 'NVIDIA L40S', kind: 'gpu', memBwGBs: 864, fp16Tflops: 362, memGiB: 48, source: NV },
  { match: /\bl40\b/i, name: 'NVIDIA L40', kind: 'gpu', memBwGBs: 864, fp16Tflops: 181, memGiB: 48, source: NV },
  { match: /\bl4\b/i, name: 'NVIDIA L4', kind: 'gpu', memBwGBs: 300, fp16Tflops: 121, memGiB: 24, source: NV },
  { match: /\ba10g?\b/i, name: 'NVIDIA A10', kind: 'gpu', memBwGBs: 600, fp16Tflops: 125, memGiB: 24, source: NV },
  { match: /\bt4\b/i, name: 'NVIDIA T4', kind: 'gpu', memBwGBs: 320, fp16Tflops: 65, memGiB: 16, source: NV },
  { match: /v100/i, name: 'NVIDIA V100 SXM2', kind: 'gpu', memBwGBs: 900, fp16Tflops: 125, memGiB: 32, source: NV },
  { match: /rtx\s*a6000/i, name: 'NVIDIA RTX A6000', kind: 'gpu', memBwGBs: 768, fp16Tflops: 155, memGiB: 48, source: NV },
  { match: /rtx\s*4090/i, name: 'NVIDIA GeForce RTX 4090', kind: 'gpu', memBwGBs: 1008, fp16Tflops: 165, memGiB: 24, source: NV },
  { match: /rtx\s*4080/i, name: 'NVIDIA GeForce RTX 4080', kind: 'gpu', memBwGBs: 717, fp16Tflops: 97.5, memGiB: 16, source: NV },
  { match: /rtx\s*3090/i, name: 'NVIDIA GeForce RTX 3090', kind: 'gpu', memBwGBs: 936, fp16Tflops: 71, memGiB: 24, source: NV },
  { match: /rtx\s*3080/i, name: 'NVIDIA GeForce RTX 3080', kind: 'gpu', memBwGBs: 760, fp16Tflops: 59.5, memGiB: 10, source: NV },
  { match: /mi300x/i, name: 'AMD Instinct MI300X', kind: 'gpu', memBwGBs: 5300, fp16Tflops: 1307, memGiB: 192, source: AMD },
  { match: /mi250x/i, name: 'AMD Instinct MI250X', kind: 'gpu', memBwGBs: 3277, fp16Tflops: 383, memGiB: 128, source: AMD },
  { match: /mi250/i, name: 'AMD Instinct MI250', kind: 'gpu', memBwGBs: 3277, fp16Tflops: 362, memGiB: 128, source: AMD },
  { match: /mi210/i, name: 'AMD Instinct MI210', kind: 'gpu', memBwGBs: 1638, fp16Tflops: 181, memGiB: 64, source: AMD },
  { match: /mi100/i, name: 'AMD Instinct MI100', kind: 'gpu', memBwGBs: 1229, fp16Tflops: 185, memGiB: 32, source: AMD },
  { match: /7900\s*xtx/i, name: 'AMD Radeon RX 7900 XTX', kind: 'gpu', memBwGBs: 960, fp16Tflops: 123, memGiB: 24, source: AMD },
  { match: /max\s*1550|\bpvc\b|ponte vecchio/i, name: 'Intel Data Center GPU Max 1550', kind: 'gpu', memBwGBs: 3277, fp16Tflops: 832, memGiB: 128, source: 'Intel ARK' },
  { match: /gaudi\s*2/i, name: 'Intel Habana Gaudi2', kind: 'accelerator', memBwGBs: 2450, fp16Tflops: 432, memGiB: 96, source: 'Habana Gaudi2 white paper' },
  { match: /m1 ultra/i, name: 'Apple M1 Ultra', kind: 'soc', memBwGBs: 800, fp16Tflops: 21, memGiB: 128, source: APPLE },
  { match: /m1 max/i, name: 'Apple M1 Max', kind: 'soc', memBwGBs: 400, fp16Tflops: 10.4, memGiB: 64, source: APPLE },
  { match: /m1 pro/i, name: 'Apple M1 Pro', kind: 'soc', memBwGBs: 200, fp16Tflops: 5.2, memGiB: 32, source: APPLE },
  { match: /apple m1\b/i, name: 'Apple M1', kind: 'soc', memBwGBs: 68, fp16Tflops: 2.6, memGiB: 16, source: APPLE },
  { match: /m2 ultra/i, name: 'Apple M2 Ultra', kind: 'soc', memBwGBs: 800, fp16Tflops: 27.2, memGiB: 192, source: APPLE },
  { match: /m2 max/i, name: 'Apple M2 Max', kind: 'soc', memBwGBs: 400, fp16Tflops: 13.6, memGiB: 96, source: APPLE },
  { match: /m2 pro/i, name: 'Apple M2 Pro', kind: 'soc', memBwGBs: 200, fp16Tflops: 6.8, memGiB: 32, source: APPLE },
  { match: /apple m2\b/i, name: 'Apple M2', kind: 'soc', memBwGBs: 100, fp16Tflops: 3.6, memGiB: 24, source: APPLE },
  { match: /m3 max/i, name: 'Apple M3 Max', kind: 'soc', memBwGBs: 400, fp16Tflops: 14.2, memGiB: 128, source: APPLE },
  { match: /m3 pro/i, name: 'Apple M3 Pro', kind: 'soc', memBwGBs: 150, fp16Tflops: 7.4, memGiB: 36, source: APPLE },
  { match: /apple m3\b/i, name: 'Apple M3', kind: 'soc', memBwGBs: 100, fp16Tflops: 4.1, memGiB: 24, source: APPLE },
  { match: /m4 max/i, name: 'Apple M4 Max', kind: 'soc', memBwGBs: 546, fp16Tflops: 17, memGiB: 128, source: APPLE },
  { match: /m4 pro/i, name: 'Apple M4 Pro', kind: 'soc', memBwGBs: 273, fp16Tflops: 9.2, memGiB: 64, source: APPLE },
  { match: /apple m4\b/i, name: 'Apple M4', kind: 'soc', memBwGBs: 120, fp16Tflops: 4.3, memGiB: 32, source: APPLE },
  // server CPUs: one socket, every memory channel populated
  { match: /epyc\s*9\d{3}/i, name: 'AMD EPYC 9004 (12ch DDR5-4800)', kind: 'cpu', memBwGBs: 460.8, fp16Tflops: 0, memGiB: 0, source: 'AMD EPYC 9004 product brief' },
  { match: /epyc\s*7\w\d3/i, name: 'AMD EPYC 7003 (8ch DDR4-3200)', kind: 'cpu', memBwGBs: 204.8, fp16Tflops: 0, memGiB: 0, source: 'AMD EPYC 7003 product brief' },
  { match: /xeon.*(platinum|gold)\s*8[45]\d\d/i, name: 'Intel Xeon 4th/5th gen Scalable (8ch DDR5-4800)', kind: 'cpu', memBwGBs: 307.2, fp16Tflops: 0, memGiB: 0, source: 'Intel ARK' },
  { match: /xeon.*(platinum|gold)\s*83\d\d/i, name: 'Intel Xeon 3rd gen Scalable (8ch DDR4-3200)', kind: 'cpu', memBwGBs: 204.8, fp16Tflops: 0, memGiB: 0, source: 'Intel ARK' }
]

/**
 * A capability class name (`engine.publishHardware: "capability"`, src/engine/hardware.ts): what
 * a node publishes instead of its device name, e.g. `class:gpu-bw2048-tf1024-mem64`. The figures
 * are already bucketed; a class without figures (`class:cpu`) is a device the table did not know.
 */
export const CLASS_PREFIX = 'class:'
const CLASS_RE = /^class:(gpu|accelerator|cpu|soc)-bw([0-9.]+)-tf([0-9.]+)-mem([0-9.]+)$/

/** The spec of a capability class name, or undefined (not a class, or one without figures). */
export function classSpec (name: string): DeviceSpec | undefined {
  const m = CLASS_RE.exec(name.trim())
  if (m == null) return undefined
  const [memBwGBs, fp16Tflops, memGiB] = [Number(m[2]), Number(m[3]), Number(m[4])]
  if (![memBwGBs, fp16Tflops, memGiB].every(Number.isFinite)) return undefined
  return { name: m[0], kind: m[1] as DeviceSpec['kind'], memBwGBs, fp16Tflops, memGiB, source: 'capability class (bucketed by its publisher)' }
}

/** The spec row of a device or CPU name (or a capability class name), or undefined ("unknown"). */
export function lookupDevice (name: string): DeviceSpec | undefined {
  if (name.startsWith(CLASS_PREFIX)) return classSpec(name)
  // a row per name, remembered (issue #19 item 3: every recommend asked the ~60 patterns for
  // the same names); a copy per call, as before
  let row = rowOfName.get(name)
  if (row === undefined) {
    if (rowOfName.size >= ROW_MEMO_MAX) rowOfName.clear()
    rowOfName.set(name, row = ROWS.find(r => r.match.test(name)) ?? null)
  }
  if (row == null) return undefined
  const { match: _match, ...spec } = row
  return spec
}
/** device names → their row (null: none); bounded, names come from peers' records too */
const rowOfName = new Map<string, (typeof ROWS)[number] | null>()
const ROW_MEMO_MAX = 4096

/** Every row (for docs and tests). */
export function deviceSpecTable (): DeviceSpec[] {
  return ROWS.map(({ match: _match, ...spec }) => spec)
}

export interface Capability {
  /** memory bandwidth of one device that runs the model (GB/s); CPU DRAM when no GPU */
  memBwGBs: number
  /** sum over the devices */
  memBwTotalGBs: number
  /** FP16/BF16 tensor TFLOPS of one device (0 = unknown) */
  fp16Tflops: number
  /** memory over the devices, MiB (spec; 0 = unknown) */
  memMiB: number
  /** 1 when every device named was found in the table */
  known: number
  /** 1 for unified memory (Apple SoCs) */
  unified: number
}

/**
 * Capability of a machine from its names. GPUs run the model when there are any and the
 * backend is not `cpu`; else the CPU does (its DRAM bandwidth).
 */
export function capabilityOf (hw: { cpuModel: string, backend: string, gpus: ReadonlyArray<{ name: string }> }, measured?: { memBwGBs: number, computeTflops: number }): Capability {
  const useGpus = hw.gpus.length > 0 && hw.backend !== 'cpu'
  const names = useGpus ? hw.gpus.map(g => g.name) : [hw.cpuModel]
  const specs = names.map(lookupDevice)
  const found = specs.filter((s): s is DeviceSpec => s != null)
  // no spec row: this node's own probe of its own CPU machine (capability-probe.ts), if it ran;
  // specKnown stays 0, as the figures are measured lower bounds, not a spec sheet's
  if (found.length === 0 && measured != null && !useGpus) {
    return { memBwGBs: measured.memBwGBs, memBwTotalGBs: measured.memBwGBs, fp16Tflops: measured.computeTflops, memMiB: 0, known: 0, unified: 0 }
  }
  if (found.length === 0) return { memBwGBs: 0, memBwTotalGBs: 0, fp16Tflops: 0, memMiB: 0, known: 0, unified: 0 }
  return {
    memBwGBs: Math.max(...found.map(s => s.memBwGBs)),
    memBwTotalGBs: found.reduce((a, s) => a + s.memBwGBs, 0),
    fp16Tflops: Math.max(...found.map(s => s.fp16Tflops)),
    memMiB: found.reduce((a, s) => a + s.memGiB * 1024, 0),
    known: found.length === specs.length ? 1 : 0,
    unified: found.some(s => s.kind === 'soc') ? 1 : 0
  }
}

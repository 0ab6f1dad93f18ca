import type { MethodDescriptor, ModelDescriptor } from '../records/types.js'
import { stableId } from '../records/stable-id.js'
import { logicalModelName, weightTypeSlug } from '../engine/model-names.js'

/**
 * Reading records that older releases wrote in a shape the current code describes differently
 * (issue #16 item 6, "existing data dirs migrate"). Records are signed and are never rewritten:
 * the stored bytes stay as they are, and the history is normalized where the meta-model reads it
 * (dataset.ts toBodies). Pure.
 *
 * What differs, and what is mapped:
 * - llama-bench imports before the faithful importer (method ids `llama-bench:fa1-kv16-b2048-ngl99`):
 *   the model was the file (`ggml-model-Q4_K_M`, its id hashing the quantization), so two
 *   quantizations of one model were two tasks, and the method id left out the weight type.
 *   Read now as the current importer writes the same llama-bench row: the logical model (name
 *   without the quantization suffix, id from architecture, parameters and that name) and the
 *   method id `llama-bench:w<weight type>-k<K>-v<V>-fa..-b..-ub..-t..-ngl..`. What the old
 *   importer did not keep takes llama-bench's default: type_k from the KV bits (16 → f16,
 *   32 → f32, n → q<n>_0), type_v = type_k, n_ubatch 512, split mode layer, and no build suffix.
 *
 * Everything else (current records, own benchmark records, records of other shapes) passes
 * through unchanged, as the same object.
 */

/**
 * Bump when the normalization changes what a stored record reads as: a meta snapshot trained
 * under another reading is retrained at start (meta/service.ts), like one of another feature schema.
 */
export const HISTORY_READING_VERSION = 1

/** The method id shape of the llama-bench importer before issue #16. */
export const LEGACY_LLAMA_BENCH_METHOD_RE = /^llama-bench:fa(\d+)-kv(\d+)-b(\d+)-ngl(-?\d+)$/

interface NormalizableBody {
  hardware: { threads: number }
  engine?: { version: string }
  model: ModelDescriptor
  workload: { family: string }
  method: MethodDescriptor
}

/** llama.cpp KV type name of an old record's KV bits (the old importer kept only the bits). */
export function kvTypeOfBits (bits: number): string {
  if (bits === 16) return 'f16'
  if (bits === 32) return 'f32'
  return `q${bits}_0`
}

/** The logical model of an old import: the file name (or `arch size type`) without the quantization. */
function logicalModel (model: ModelDescriptor): ModelDescriptor {
  let name = model.name
  // without model_filename the old importer named the model by its whole model_type
  const parts = name.split(' ')
  if (parts.length > 2 && model.fileType !== '' && name.endsWith(' ' + model.fileType)) name = parts.slice(0, 2).join(' ')
  name = logicalModelName(name)
  return { ...model, name, id: stableId({ architecture: model.architecture, params: model.params, name }) }
}

/** A body as the current code reads it (the same object when nothing needs mapping). */
export function normalizeHistoryBody<B extends NormalizableBody> (b: B): B {
  if (b.workload?.family !== 'llama-bench') return b
  const m = LEGACY_LLAMA_BENCH_METHOD_RE.exec(b.method?.id ?? '')
  if (m == null) return b
  const [fa, kv, batch, ngl] = m.slice(1).map(Number)
  const knobs = b.method.knobs ?? {}
  const threads = Math.max(1, Math.round(knobs.threads ?? b.hardware.threads))
  const type = kvTypeOfBits(kv)
  const build = /\bb(\d+)$/.exec(b.engine?.version ?? '')
  const id = `llama-bench:w${weightTypeSlug(b.model.fileType)}-k${type}-v${type}-fa${fa}-b${batch}-ub512-t${threads}-ngl${ngl}`
  return {
    ...b,
    model: logicalModel(b.model),
    method: { id, knobs: { ...knobs, ubatchSize: 512, kvCacheBitsV: kv, gpuLayers: ngl, build: build != null ? Number(build[1]) : 0 } }
  }
}

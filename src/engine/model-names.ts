/**
 * Naming conventions of GGUF files and llama.cpp types that more than one layer reads: the
 * llama-bench importer writes records with them (src/bench/llama-bench-import.ts), and the
 * meta-model reads records of older importers through them (src/meta/legacy-records.ts). Pure.
 */

/** "Q4_K - Medium" → "Q4_K_M": the weight type as a short name for method ids. */
export function weightTypeSlug (fileType: string): string {
  return fileType.trim().replace(/\s*-\s*(Small|Medium|Large|XL|XS|XXS)$/i, (_m, s: string) => '_' + (s.length <= 2 ? s : s[0]).toUpperCase()).replace(/[^A-Za-z0-9_]+/g, '')
}

/**
 * The model's name without the file's quantization suffix: "Llama-3.2-1B-Instruct-Q4_0" →
 * "Llama-3.2-1B-Instruct", "ggml-model-f16" → "ggml-model" (architecture and parameter count
 * still tell such models apart).
 */
export function logicalModelName (fileBase: string): string {
  const quant = /[-._](?:i?q\d[a-z0-9_]*|f16|f32|bf16|fp16|fp32|mxfp4|tq\d[a-z0-9_]*)$/i
  let name = fileBase
  while (quant.test(name)) name = name.replace(quant, '')
  return name === '' ? fileBase : name
}

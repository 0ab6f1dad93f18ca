import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/util/paths.js'

/*
 * llama-bench rows of one machine (RTX 4090, CUDA) on which flash attention OFF is 1.3x faster
 * for prefill and ON 1.1x faster for decode: the shape of a result that only imported settings
 * can show, shared by the tests of recommend on imported data and of old data dirs.
 */
const template = JSON.parse(readFileSync(join(packageRoot(), 'test', 'fixtures', 'llama-bench.jsonl'), 'utf8').split('\n')[0]) as Record<string, unknown>
const GPU = { cpu_info: 'AMD Ryzen 9 7950X 16-Core Processor', gpu_info: 'NVIDIA GeForce RTX 4090', backends: 'CUDA', n_gpu_layers: 99, n_threads: 16 }

/** One llama-bench row: `tps` tokens per second for the test. */
export function llamaBenchRow (fa: boolean, nPrompt: number, nGen: number, tps: number, i: number): Record<string, unknown> {
  const avgNs = Math.round((nPrompt + nGen) / tps * 1e9)
  return { ...template, ...GPU, flash_attn: fa, n_prompt: nPrompt, n_gen: nGen, n_depth: 0, avg_ns: avgNs, stddev_ns: 0, samples_ns: [avgNs, avgNs, avgNs], test_time: `2026-11-20T10:${String(i).padStart(2, '0')}:00Z` }
}

/** Prefill tests (pp128..pp2048) and decode tests (tg32..tg128), each with flash attention off and on. */
export function flashAttnRows (): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  let i = 0
  for (const p of [128, 256, 512, 1024, 2048]) out.push(llamaBenchRow(false, p, 0, 13_000, i++), llamaBenchRow(true, p, 0, 10_000, i++))
  for (const g of [32, 64, 128]) out.push(llamaBenchRow(false, 0, g, 200, i++), llamaBenchRow(true, 0, g, 220, i++))
  return out
}

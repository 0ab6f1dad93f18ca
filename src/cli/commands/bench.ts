import { resolve } from 'node:path'
import { intFlag, parseFlags, printJson } from '../args.js'
import { apiBench, apiHeaders, apiUrl, PartialBenchRun } from '../../node/api-client.js'
import { SwarmtuneError } from '../../util/errors.js'
import { createProgress, type Progress } from '../../bench/progress.js'
import { formatSummaries, llamaEngineFactory, prepareBench, summarizeCell, type BenchSelection, type BenchSummary } from '../../bench/prepare.js'
import { runBenchmark, type BenchProgressEvent } from '../../bench/runner.js'
import { SCALES, type Scale } from '../../bench/workloads.js'
import { recordVersionFor, createRecord, validateBody, type SignedRecord, type UnsignedBody } from '../../records/index.js'
import { openLocalStore } from '../local-store.js'
import { DATA_DIR_HELP } from '../../node/data-dir.js'

const HELP = `usage: swarmtune bench [--quick] [--model NAME] [--methods a,b] [--workloads x,y] [--repeats N]
                      [--scale tiny|default] [--prompts FILE.jsonl] [--timeout-ms MS] [--json]
                      [--data-dir D [--config F] | --api URL]

Duration: every method on every workload, 3 repeats, with the default model takes about 12
minutes on 2 CPU cores. --quick (model tiny, scale tiny, 1 repeat; flags given win) takes well under a minute
(about 20 s on 2 cores).

Benchmarks acceleration methods (config/methods.json) on workload families (chat, docqa,
summarize, codeedit, classify; --prompts adds real prompts in OpenAI chat JSONL) with llama.cpp
on this machine. Each (method, workload) result becomes a signed record (source: benchmark);
unsupported methods and failed runs are recorded with their reason.

  standalone (default, or --data-dir D): signs with the node identity in D and stores the
             records in D's store; refused while a daemon holds D (use --api then).
  --api URL: the running daemon at URL runs the benchmark, signs, stores and gossips.
  Ctrl-C:    stops the run (with --api, the daemon's run: DELETE /bench) and prints the summary
             of what was stored so far.
  --json:    a JSON array, one object per (method, workload): method, workload, family, ok,
             outputTokensPerSecond, totalTokensPerSecond, ttftMsP50, wallMs, spread, repeats,
             id, and diverged / error / skipped when present.
${DATA_DIR_HELP}`

const csv = (s?: string): string[] | undefined => s == null ? undefined : s.split(',').map(x => x.trim()).filter(x => x !== '')

/** Progress events (local or streamed from the daemon) → a bar with ETA or plain lines on stderr. */
function progressSink (quiet: boolean): { onEvent: (ev: BenchProgressEvent) => void, done: () => void } {
  let bar: Progress | undefined
  let last = 0
  return {
    onEvent (ev) {
      if (quiet) return
      bar ??= createProgress({ total: ev.total, title: 'bench' })
      bar.setTotal(ev.total)
      if (ev.phase === 'skipped' || ev.phase === 'failed') bar.note(`${ev.method} × ${ev.workload}: ${ev.phase}: ${ev.message ?? ''}`)
      if (ev.done > last) bar.tick(`${ev.method} × ${ev.workload}`, ev.done - last)
      last = ev.done
    },
    done () { bar?.done() }
  }
}

async function standalone (sel: BenchSelection, dataDir: string | undefined, configFile: string | undefined, onEvent: (ev: BenchProgressEvent) => void): Promise<BenchSummary[]> {
  const { config, store, privateKey, author } = await openLocalStore(dataDir, configFile, 'bench')
  const summaries: BenchSummary[] = []
  let engine: Awaited<ReturnType<typeof llamaEngineFactory>> | undefined
  // Ctrl-C: finish the current run as a failed cell and store what was measured
  const ac = new AbortController()
  const onSigint = (): void => { ac.abort() }
  process.once('SIGINT', onSigint)
  try {
    const p = await prepareBench(config, sel)
    engine = await llamaEngineFactory(config)
    // loading llama.cpp reset SIGINT to its default (Ctrl-C killed bench with no summary):
    // listening anew makes Node install its handler again
    process.off('SIGINT', onSigint)
    process.once('SIGINT', onSigint)
    const sign = async (body: UnsignedBody): Promise<SignedRecord> => {
      const now = Date.now()
      const seq = await store.nextSeq(author)
      validateBody({ ...body, v: recordVersionFor(body), author, seq, timestamp: body.timestamp ?? now }, now)
      const record = await createRecord(privateKey, author, seq, body, now)
      const status = await store.put(record, { own: true })
      if (status !== 'inserted') throw new SwarmtuneError('E_OWN_SEQ', `own record seq ${seq} was already taken (${status})`)
      return record
    }
    await runBenchmark({
      engine,
      // PreparedBench holds exactly the runner's model/method/workload options
      ...p,
      signal: ac.signal,
      onProgress: onEvent,
      onResult: async cell => { summaries.push(summarizeCell(cell, await sign(cell.body))) }
    })
  } finally {
    process.off('SIGINT', onSigint)
    await engine?.close().catch(() => {})
    await store.stop()
  }
  return summaries
}

/**
 * Ctrl-C during `bench --api`: the first asks the daemon to stop its run (DELETE /bench), whose
 * stream then ends with what it stored; a second, or a daemon without that route, stops waiting
 * (closing the stream also cancels the daemon's run) and keeps the results received so far.
 */
function interruptApiRun (base: string): { signal: AbortSignal, interrupted: () => boolean, dispose: () => void } {
  const ac = new AbortController()
  let count = 0
  const onSigint = (): void => {
    count++
    if (count > 1) { ac.abort(); return }
    process.stderr.write('\nswarmtune bench: stopping the daemon\'s benchmark; the summary follows (Ctrl-C again to stop waiting)\n')
    fetch(`${base}/bench`, { method: 'DELETE', headers: apiHeaders() })
      .then(async r => { await r.body?.cancel(); if (!r.ok) ac.abort() }, () => { ac.abort() })
  }
  process.on('SIGINT', onSigint)
  return { signal: ac.signal, interrupted: () => count > 0, dispose: () => { process.off('SIGINT', onSigint) } }
}

/** POST /bench on the daemon and follow its NDJSON event stream. */
async function viaApi (base: string, sel: BenchSelection, onEvent: (ev: BenchProgressEvent) => void): Promise<BenchSummary[]> {
  const stop = interruptApiRun(base)
  try {
    return await apiBench(base, sel, onEvent, stop.signal)
  } catch (err) {
    if (stop.interrupted() && err instanceof PartialBenchRun) return err.results
    throw err instanceof PartialBenchRun ? err.cause : err
  } finally {
    stop.dispose()
  }
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    model: { type: 'string' },
    methods: { type: 'string' },
    workloads: { type: 'string' },
    repeats: { type: 'string' },
    scale: { type: 'string' },
    prompts: { type: 'string' },
    'timeout-ms': { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    api: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.api != null && f['data-dir'] != null) throw new SwarmtuneError('E_USAGE', '--api and --data-dir exclude each other: the daemon uses its own data dir')
  if (f.scale != null && !SCALES.includes(f.scale as Scale)) throw new SwarmtuneError('E_USAGE', `--scale must be one of ${SCALES.join(', ')}`)
  // --quick: a first look in a fraction of the full run's time; explicit flags still win
  const quick = f.quick === true
  const sel: BenchSelection = {
    model: f.model ?? (quick ? 'tiny' : undefined),
    methods: csv(f.methods),
    workloads: csv(f.workloads),
    scale: (f.scale ?? (quick ? 'tiny' : undefined)) as Scale | undefined,
    prompts: f.prompts != null ? resolve(f.prompts) : undefined
  }
  if (f.repeats != null) sel.repeats = intFlag(f.repeats, 'repeats', 3)
  else if (quick) sel.repeats = 1
  if (f['timeout-ms'] != null) sel.timeoutMs = intFlag(f['timeout-ms'], 'timeout-ms', 120_000)
  if (f.seed != null) sel.seed = intFlag(f.seed, 'seed', 1)
  if (sel.repeats === 0) throw new SwarmtuneError('E_USAGE', '--repeats must be at least 1')

  // the full run is long: say so before it starts, not 12 minutes in
  if (!quick && f.methods == null && f.workloads == null && f.repeats == null) {
    process.stderr.write('swarmtune bench: every method × workload, 3 repeats: about 12 minutes on 2 CPU cores (--quick for a first look in well under a minute)\n')
  }
  const sink = progressSink(false)
  let summaries: BenchSummary[]
  try {
    summaries = f.api != null
      ? await viaApi(apiUrl(f.api), sel, sink.onEvent)
      : await standalone(sel, f['data-dir'], f.config, sink.onEvent)
  } catch (err) {
    sink.done()
    throw err
  }
  sink.done()
  if (f.json === true) printJson(summaries)
  else {
    process.stdout.write(formatSummaries(summaries))
    const failed = summaries.filter(s => !s.ok && s.skipped == null).length
    const skipped = summaries.filter(s => s.skipped != null).length
    process.stdout.write(`${summaries.length} results stored as signed records${skipped > 0 ? `, ${skipped} skipped (unsupported)` : ''}${failed > 0 ? `, ${failed} failed` : ''}\n`)
  }
  return 0
}


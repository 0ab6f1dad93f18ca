import '../src/util/polyfill.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { synthBodies } from '../src/records/synthetic.js'
import { packageRoot } from '../src/util/paths.js'

/**
 * Issue #18, same-run before/after: the attacks of the issue against daemons of two builds on one
 * machine, alternating builds trial by trial (old, new; then new, old; ...). Each daemon is
 * started through its build's real CLI (`node <build>/dist/src/cli/main.js start`).
 *
 *   npm run bench:hardening -- --against /tmp/old-a7d5ff3 [--trials 2] [--junk-timeout-s 90] [--json]
 *
 * `--against` is the root of another checkout with its own `dist/` (e.g. `git worktree add
 * /tmp/old-a7d5ff3 a7d5ff3`, symlink node_modules, `npx tsc -p tsconfig.json`). Per build:
 *   junk      15 MiB of `1\n` to POST /import: time to reply, status, reply size, /status latency
 *             (max) and the event-loop max (GET /eventloop) while it runs
 *   valid     a ~10 MB import of valid bodies: time, event-loop max, event-loop max per MB
 *   prompt    the largest prompt the new build accepts (256 Ki − 1 characters, over the tiny
 *             model's context): time to the answer (a refusal) and event-loop max (tokenization);
 *             then an 8 MB prompt: time to refusal, status, code, the daemon's peak RSS
 *   sigterm   SIGTERM to the daemon of the prompt step (engine loaded): ms to exit, exit code
 */
const { values: f } = parseArgs({ options: { against: { type: 'string' }, trials: { type: 'string' }, 'junk-timeout-s': { type: 'string' }, json: { type: 'boolean' } } })
if (f.against == null) {
  process.stderr.write('usage: npm run bench:hardening -- --against <root of an older build with dist/> [--trials N] [--json]\n')
  process.exit(2)
}
const builds = { old: resolve(f.against), new: packageRoot() }
const trials = Math.max(1, Number(f.trials ?? 1))
const junkTimeoutMs = Number(f['junk-timeout-s'] ?? 90) * 1000
const MiB = 1024 * 1024

interface Daemon { api: string, proc: ChildProcess, exited: Promise<number | string>, dataDir: string }

/** config keys only where the build knows them (an unknown key is E_CONFIG) */
function knownKeys (root: string): Record<string, string> {
  const schema = readFileSync(join(root, 'config/schema.json'), 'utf8')
  return schema.includes('"prepareOnStart"') ? { SWARMTUNE__engine__prepareOnStart: 'false' } : {}
}

async function startDaemon (root: string, env: Record<string, string> = {}): Promise<Daemon> {
  const dataDir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-hardening-'))
  const args = [join(root, 'dist/src/cli/main.js'), 'start', '--json', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api-host', '127.0.0.1', '--api-port', '0']
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, SWARMTUNE_LOCAL_TESTBED: 'true', SWARMTUNE_VERIFY_WORKERS: '0', SWARMTUNE__bench__background__enabled: 'false', SWARMTUNE__engine__defaultModel: 'tiny', ...knownKeys(root), ...env },
    stdio: ['ignore', 'pipe', 'ignore']
  })
  const exited = new Promise<number | string>(resolve => { proc.once('exit', (code, sig) => { resolve(code ?? sig ?? 'unknown') }) })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve)
    void exited.then(code => { reject(new Error(`daemon of ${root} exited (${code}) before starting`)) })
  })
  proc.stdout!.resume()
  return { api: (JSON.parse(line) as { api: string }).api, proc, exited, dataDir }
}

async function kill (d: Daemon): Promise<void> {
  d.proc.kill('SIGKILL')
  await d.exited
  rmSync(d.dataDir, { recursive: true, force: true })
}

interface Reply { status: number, bytes: number, ms: number, text: string }

async function post (url: string, body: Buffer, contentType: string, timeoutMs: number): Promise<Reply | { timedOut: true, ms: number }> {
  const t0 = performance.now()
  return await new Promise(resolve => {
    const req = request(url, { method: 'POST', headers: { 'content-type': contentType, 'content-length': String(body.length) } }, res => {
      const chunks: Buffer[] = []
      let bytes = 0
      res.on('data', (c: Buffer) => { bytes += c.length; if (bytes < 64 * 1024) chunks.push(c) })
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0, text: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', () => { clearTimeout(timer); resolve({ status: 0, bytes, ms: performance.now() - t0, text: '' }) })
    })
    const timer = setTimeout(() => { req.destroy(); resolve({ timedOut: true, ms: performance.now() - t0 }) }, timeoutMs)
    req.on('error', () => { clearTimeout(timer); resolve({ status: 0, bytes: 0, ms: performance.now() - t0, text: '' }) })
    req.end(body)
  })
}

async function getJson<T> (url: string, timeoutMs = 10_000): Promise<T | undefined> {
  try { return await (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).json() as T } catch { return undefined }
}

/** /status every 100 ms until `done`: the slowest answer and how many took over 5 s */
function pollStatus (api: string): { stop: () => Promise<{ maxMs: number, answers: number, over5s: number }> } {
  let running = true
  let maxMs = 0
  let answers = 0
  let over5s = 0
  const loop = (async () => {
    while (running) {
      const t0 = performance.now()
      const ok = await getJson(`${api}/status`, 5000)
      const ms = performance.now() - t0
      if (ok == null) over5s++
      else answers++
      maxMs = Math.max(maxMs, ms)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })()
  return { stop: async () => { running = false; await loop; return { maxMs: Math.round(maxMs), answers, over5s } } }
}

/** the loop monitor keeps one-second slices: let the slice of what came before end first */
const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 1100)) }

const loopMax = async (api: string, since: number): Promise<number | null> =>
  (await getJson<{ maxMs: number }>(`${api}/eventloop?since=${since}`))?.maxMs ?? null

const errorCodeOf = (text: string): string | null => {
  try { const j = JSON.parse(text); return j.error?.code ?? j.code ?? null } catch { return null }
}

async function junk (root: string): Promise<Record<string, unknown>> {
  const d = await startDaemon(root)
  try {
    const body = Buffer.from('1\n'.repeat(15 * MiB / 2))
    await settle()
    const since = Date.now()
    const poll = pollStatus(d.api)
    const r = await post(`${d.api}/import`, body, 'application/x-ndjson', junkTimeoutMs)
    const status = await poll.stop()
    const rss = peakRssMiB(d.proc.pid!)
    return 'timedOut' in r
      ? { replyS: `> ${Math.round(r.ms / 1000)} (no reply)`, statusMaxMs: status.maxMs, statusOver5s: status.over5s, loopMaxMs: await loopMax(d.api, since), peakRssMiB: rss }
      : { replyS: round(r.ms / 1000, 1), status: r.status, replyBytes: r.bytes, statusMaxMs: status.maxMs, statusOver5s: status.over5s, loopMaxMs: await loopMax(d.api, since), peakRssMiB: rss }
  } finally { await kill(d) }
}

async function validImport (root: string): Promise<Record<string, unknown>> {
  const d = await startDaemon(root)
  try {
    const lines: string[] = []
    let bytes = 0
    for (const b of synthBodies(60_000, 42)) {
      const l = JSON.stringify(b)
      lines.push(l)
      bytes += l.length + 1
      if (bytes >= 10e6) break
    }
    const body = Buffer.from(lines.join('\n') + '\n')
    await settle()
    const since = Date.now()
    const r = await post(`${d.api}/import`, body, 'application/x-ndjson', 300_000)
    const lm = await loopMax(d.api, since)
    const mb = body.length / 1e6
    if ('timedOut' in r) return { MB: round(mb, 1), replyS: `> ${Math.round(r.ms / 1000)}`, loopMaxMs: lm }
    // the reply lists every id: only its first 64 KiB are kept
    const imported = Number(/"imported":(\d+)/.exec(r.text)?.[1] ?? NaN)
    return { MB: round(mb, 1), status: r.status, imported, replyS: round(r.ms / 1000, 1), loopMaxMs: lm, loopMaxMsPerMB: lm != null ? round(lm / mb, 0) : null }
  } finally { await kill(d) }
}

function peakRssMiB (pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m != null ? Math.round(Number(m[1]) / 1024) : null
  } catch { return null }
}

const completion = (prompt: string): Buffer => Buffer.from(JSON.stringify({ model: 'tiny', prompt, max_tokens: 1 }))

/** prompt words: the tokenizer's realistic case (word pieces), not one repeated byte */
function promptOf (chars: number): string {
  const words = 'the quick brown fox jumps over a lazy dog while we read the numbers one two three '
  return words.repeat(Math.ceil(chars / words.length)).slice(0, chars)
}

async function prompts (root: string): Promise<{ row: Record<string, unknown>, daemon: Daemon }> {
  const d = await startDaemon(root)
  // first use writes and loads the tiny model: not part of what is measured
  const warm = await post(`${d.api}/v1/completions`, completion('hello there'), 'application/json', 300_000)
  const row: Record<string, unknown> = { warmStatus: 'timedOut' in warm ? 'timeout' : warm.status }
  const largest = 256 * 1024 - 1
  await settle()
  let since = Date.now()
  const big = await post(`${d.api}/v1/completions`, completion(promptOf(largest)), 'application/json', 120_000)
  row.largestAcceptedMs = round(big.ms, 0)
  row.largestStatus = 'timedOut' in big ? 'timeout' : `${big.status} ${errorCodeOf(big.text) ?? ''}`.trim()
  row.largestLoopMaxMs = await loopMax(d.api, since)
  row.largestLoopMaxMsPerMB = typeof row.largestLoopMaxMs === 'number' ? round(row.largestLoopMaxMs / (largest / 1e6), 0) : null
  await settle()
  since = Date.now()
  const huge = await post(`${d.api}/v1/completions`, completion(promptOf(8 * MiB)), 'application/json', 120_000)
  row.prompt8MBRefusalMs = round(huge.ms, 0)
  row.prompt8MBStatus = 'timedOut' in huge ? 'timeout' : `${huge.status} ${errorCodeOf(huge.text) ?? ''}`.trim()
  row.prompt8MBLoopMaxMs = await loopMax(d.api, since)
  row.peakRssMiB = peakRssMiB(d.proc.pid!)
  return { row, daemon: d }
}

async function sigterm (d: Daemon): Promise<Record<string, unknown>> {
  const t0 = performance.now()
  d.proc.kill('SIGTERM')
  const code = await d.exited
  const ms = performance.now() - t0
  rmSync(d.dataDir, { recursive: true, force: true })
  return { exitMs: Math.round(ms), exitCode: code }
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits

async function measure (name: 'old' | 'new'): Promise<Record<string, unknown>> {
  const root = builds[name]
  const load = loadavg()[0]
  const junkRow = await junk(root)
  const validRow = await validImport(root)
  const { row: promptRow, daemon } = await prompts(root)
  const term = await sigterm(daemon)
  return { build: name, root, load1: round(load, 2), junk: junkRow, valid: validRow, prompt: promptRow, sigterm: term }
}

const started = new Date().toISOString()
const load0 = loadavg()
const results: Array<Record<string, unknown>> = []
for (let t = 0; t < trials; t++) {
  const order: Array<'old' | 'new'> = t % 2 === 0 ? ['old', 'new'] : ['new', 'old']
  for (const name of order) {
    const r = { trial: t + 1, ...await measure(name) }
    results.push(r)
    process.stderr.write(JSON.stringify(r) + '\n')
  }
}
const out = { started, node: process.version, loadavgStart: load0.map(x => round(x, 2)), loadavgEnd: loadavg().map(x => round(x, 2)), builds, results }
if (f.json === true) process.stdout.write(JSON.stringify(out) + '\n')
else {
  process.stdout.write(`bench:hardening ${started}, Node ${process.version}, load ${out.loadavgStart.join(' ')} → ${out.loadavgEnd.join(' ')}\n`)
  for (const r of results) process.stdout.write(JSON.stringify(r) + '\n')
}

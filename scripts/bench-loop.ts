import '../src/util/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { apiGet } from '../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../src/testbed/processes.js'
import { cliPath } from '../src/util/paths.js'

/**
 * Issue #17's first goal, measured: N fresh daemons started through the real CLI (`swarmtune
 * start`, separate processes) with only a data dir, ports and (all but the first) the first one's
 * address as bootstrap, and the background sweep at its DEFAULTS (on; the testbed turns it off
 * for every other test and benchmark). Reports, per daemon, the seconds from the start of all
 * daemons until (a) its first own benchmark record, (b) its store holds benchmark records of
 * every author, (c) it has a trained meta-model snapshot. Bounded by --minutes.
 *
 * Then issue #17's two other goals: (d) a 4th daemon started with an empty data dir (same
 * defaults, bootstrapped to the first) is asked `swarmtune recommend --peer <its address> --json`
 * (the real CLI, every 2 s; the task: the workload the most authors measured) until an answer
 * has `source` other than `cold-start` and `evidence.authors` ≥ 3: seconds from its spawn. It
 * joins once every snapshot has --min-rows rows (a model the selector answers from) or at the
 * deadline; (e) one chat completion on peer 0
 * (POST /v1/chat/completions): seconds from the request until its `serving` record is in each
 * other peer's history.
 *
 *   node dist/scripts/bench-loop.js [--peers 3] [--minutes 6] [--model small|tiny] [--min-rows 10] [--json]
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, minutes: { type: 'string' }, model: { type: 'string' }, 'min-rows': { type: 'string' }, json: { type: 'boolean' } } })
// the 4th daemon joins once every snapshot has this many rows (10 = MIN_CELLS, below which the selector answers cold-start) or at the deadline
const minRows = Number(f['min-rows'] ?? 10)
const peers = Math.max(2, Number(f.peers ?? 3))
const deadline = Date.now() + Number(f.minutes ?? 6) * 60_000
const JOIN_LIMIT_S = 120
const CHAT_LIMIT_S = 120

interface Status { peerId: string, snapshot: { rows: number } | null, bench?: { background?: { cellsDone: number, spentShare: number, phase: string } } }
interface Page { records: Array<{ author: string, body: { model: { name: string }, workload: { name: string, features: Record<string, number> } } }> }

const root = mkdtempSync(join(tmpdir(), 'swarmtune-bench-loop-'))
const daemons: DaemonProcess[] = []
const load0 = loadavg()[0]
// the sweep at its defaults: only the model may be chosen (the default is `small`)
const env: Record<string, string> = { SWARMTUNE__bench__background__enabled: 'true', ...(f.model != null ? { SWARMTUNE__engine__defaultModel: f.model } : {}) }
const t0 = Date.now()
try {
  const first = await spawnDaemon({ dataDir: join(root, 'p0'), port: 0, apiPort: 0, env, timeoutMs: 120_000 })
  daemons.push(first)
  for (let i = 1; i < peers; i++) daemons.push(await spawnDaemon({ dataDir: join(root, `p${i}`), port: 0, apiPort: 0, env, bootstrap: [loopbackAddr(first.info)], timeoutMs: 120_000 }))
  const authors = daemons.map(d => d.info.peerId)
  const firstOwn = new Map<string, number>()
  const allAuthors = new Map<string, number>()
  const snapshot = new Map<string, number>()
  const rowsOf = new Map<string, number>()
  const secs = (): number => Math.round((Date.now() - t0) / 100) / 10
  while (Date.now() < deadline && (allAuthors.size < peers || snapshot.size < peers || [...rowsOf.values()].some(r => r < minRows))) {
    for (const d of daemons) {
      const id = d.info.peerId
      const holds = await Promise.all(authors.map(async a => (await apiGet<Page>(d.info.api, `/records?author=${a}&source=benchmark&limit=1`)).records.length > 0))
      if (holds[authors.indexOf(id)] && !firstOwn.has(id)) firstOwn.set(id, secs())
      if (holds.every(Boolean) && !allAuthors.has(id)) allAuthors.set(id, secs())
      const s = await apiGet<Status>(d.info.api, '/status')
      if (s.snapshot != null && !snapshot.has(id)) snapshot.set(id, secs())
      rowsOf.set(id, s.snapshot?.rows ?? 0)
    }
    await new Promise(resolve => setTimeout(resolve, 2000))
  }
  const rows = await Promise.all(daemons.map(async (d, i) => {
    const s = await apiGet<Status>(d.info.api, '/status')
    const id = d.info.peerId
    return { peer: i, firstOwnRecordS: firstOwn.get(id) ?? null, allAuthorsS: allAuthors.get(id) ?? null, snapshotS: snapshot.get(id) ?? null, snapshotRows: s.snapshot?.rows ?? null, background: s.bench?.background ?? null }
  }))
  const loadJoin = loadavg()[0]
  const joinAtS = secs()
  const join4 = { atS: joinAtS, ...await fourthDaemon(first, authors.length) }
  const loadChat = loadavg()[0]
  const chat = await chatToServingRecord(daemons)
  const out = { peers, model: f.model ?? 'small (default)', loadavg1Start: load0, loadavg1Join: loadJoin, loadavg1Chat: loadChat, loadavg1End: loadavg()[0], rows, join: join4, chat }
  if (f.json === true) process.stdout.write(JSON.stringify(out) + '\n')
  else {
    process.stdout.write(`peers ${peers}, model ${out.model}, load ${load0.toFixed(1)} → ${out.loadavg1End.toFixed(1)}\n`)
    for (const r of rows) process.stdout.write(`peer ${r.peer}: first own record ${r.firstOwnRecordS ?? '-'} s, records of all authors ${r.allAuthorsS ?? '-'} s, snapshot ${r.snapshotS ?? '-'} s (${r.snapshotRows ?? '-'} rows), sweep ${JSON.stringify(r.background)}\n`)
    process.stdout.write(`4th daemon (spawned at ${joinAtS} s, load ${loadJoin.toFixed(1)}): ${join4.answeredS != null ? `recommend with source ${join4.source} on ${join4.authors} authors ${join4.answeredS} s after its spawn (started in ${join4.startedS} s, ${join4.tries} tries)` : `no such answer within ${JOIN_LIMIT_S} s; last: ${join4.last}`}\n`)
    process.stdout.write(`chat on peer 0 (load ${loadChat.toFixed(1)}): answered in ${chat.answeredS} s; its serving record on peers ${chat.arrivals.map(a => `${a.peer}: ${a.s ?? '-'} s`).join(', ')} after the request\n`)
  }
} finally {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(root, { recursive: true, force: true })
}


interface RecommendOut { source: string, coldStart: boolean, evidence: { records: number, authors: number } }

async function recommendCli (peer: string, task: string): Promise<RecommendOut | string> {
  return await new Promise(resolve => {
    execFile(process.execPath, [cliPath(), 'recommend', '--peer', peer, '--task', task, '--json', '--timeout', '10000'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err != null) resolve(stderr.trim().split('\n').at(-1) ?? String(err))
      else { try { resolve(JSON.parse(stdout) as RecommendOut) } catch { resolve(`unparsable: ${stdout.slice(0, 200)}`) } }
    })
  })
}

/** Goal (d): a 4th fresh daemon joins; seconds from its spawn to a warm recommend on ≥ 3 authors. */
async function fourthDaemon (first: DaemonProcess, authors: number): Promise<{ startedS: number, answeredS: number | null, source: string | null, authors: number | null, tries: number, last: string }> {
  const task = join(root, 'task.json')
  // the workload measured by the most authors (the recommend evidence counts the task's class)
  const page = await apiGet<Page>(first.info.api, '/records?source=benchmark&limit=1000')
  const byWorkload = new Map<string, { authors: Set<string>, body: Page['records'][number]['body'] }>()
  for (const r of page.records) {
    const e = byWorkload.get(r.body.workload.name) ?? { authors: new Set<string>(), body: r.body }
    e.authors.add(r.author)
    byWorkload.set(r.body.workload.name, e)
  }
  const pick = [...byWorkload.values()].sort((a, b) => b.authors.size - a.authors.size)[0]
  writeFileSync(task, JSON.stringify({ model: pick?.body.model.name ?? f.model ?? 'small', workload: { features: pick?.body.workload.features ?? { requests: 4, promptTokensMean: 300 } } }))
  const t = Date.now()
  const d = await spawnDaemon({ dataDir: join(root, `p${daemons.length}`), port: 0, apiPort: 0, env, bootstrap: [loopbackAddr(first.info)], timeoutMs: 120_000 })
  daemons.push(d)
  const startedS = (Date.now() - t) / 1000
  let tries = 0
  let last = ''
  while (Date.now() - t < JOIN_LIMIT_S * 1000) {
    tries++
    const r = await recommendCli(loopbackAddr(d.info), task)
    if (typeof r !== 'string') {
      last = `source ${r.source}, ${r.evidence.authors} authors, ${r.evidence.records} records`
      if (r.source !== 'cold-start' && r.evidence.authors >= Math.min(3, authors)) return { startedS, answeredS: Math.round((Date.now() - t) / 100) / 10, source: r.source, authors: r.evidence.authors, tries, last }
    } else last = r
    await new Promise(resolve => setTimeout(resolve, 2000))
  }
  return { startedS, answeredS: null, source: null, authors: null, tries, last }
}

/** Goal (e): one chat completion on peer 0; seconds from the request to its serving record on each other peer. */
async function chatToServingRecord (all: DaemonProcess[]): Promise<{ answeredS: number, arrivals: Array<{ peer: number, s: number | null }> }> {
  const author = all[0].info.peerId
  const servingIds = async (d: DaemonProcess): Promise<Set<string>> => new Set((await apiGet<{ records: Array<{ id: string }> }>(d.info.api, `/records?author=${author}&source=serving&order=desc&limit=50`)).records.map(r => r.id))
  const before = await servingIds(all[0])
  const t = Date.now()
  const res = await fetch(`${all[0].info.api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: f.model ?? 'small', messages: [{ role: 'user', content: 'How fast is this swarm?' }], max_tokens: 16 }) })
  if (!res.ok) throw new Error(`chat: ${res.status} ${await res.text()}`)
  await res.json()
  const answeredS = (Date.now() - t) / 1000
  const secs = (): number => Math.round((Date.now() - t) / 100) / 10
  let id: string | undefined
  while (id == null && Date.now() - t < CHAT_LIMIT_S * 1000) {
    id = [...await servingIds(all[0])].find(x => !before.has(x))
    if (id == null) await new Promise(resolve => setTimeout(resolve, 200))
  }
  const arrivals = all.slice(1).map((_, i) => ({ peer: i + 1, s: null as number | null }))
  while (id != null && arrivals.some(a => a.s == null) && Date.now() - t < CHAT_LIMIT_S * 1000) {
    for (const a of arrivals) if (a.s == null && (await servingIds(all[a.peer])).has(id)) a.s = secs()
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return { answeredS, arrivals }
}

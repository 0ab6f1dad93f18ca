// The dashboard's script: polls the control API of the daemon that served it and draws the
// panels. Every string from the API (peer ids, model names, error messages) reaches the page
// through textContent, option text or canvas text, never as HTML.
import { parseMetrics, sumOf, rate, modelsOf, authorCounts, speedupTable, speedupColor } from './data.js'
import { renderQuality } from './quality.js'
import { updateChoices } from './choices.js'

const TOKEN_KEY = 'swarmtune-api-token'
const POLL_MS = Math.max(250, Number(new URLSearchParams(location.search).get('poll')) || 2000)
const RECORDS_EVERY = 5
const RECORDS_LIMIT = 2000
const HISTORY = 60
const FAMILIES = ['chat', 'docqa', 'summarize', 'codeedit', 'classify']

class ApiCallError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

const $ = id => document.getElementById(id)
const state = { polls: 0, status: null, records: [], trust: null, committee: null, samples: [], charts: {}, model: null }

function el (tag, text, cls) {
  const e = document.createElement(tag)
  if (text != null) e.textContent = String(text)
  if (cls != null) e.className = cls
  return e
}

function show (id, yes) { $(id).hidden = !yes }

async function call (path, init = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY)
  const headers = { ...(init.headers ?? {}) }
  if (token != null) headers.authorization = `Bearer ${token}`
  const res = await fetch(path, { ...init, headers, cache: 'no-store' })
  const type = res.headers.get('content-type') ?? ''
  const body = type.includes('json') ? await res.json().catch(() => null) : await res.text()
  if (!res.ok) throw new ApiCallError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? res.statusText)
  return body
}

/** A route another service adds: absent (404) means its panel has no data. */
async function optional (path) {
  try { return await call(path) } catch (err) { if (err.status === 404) return null; throw err }
}

function facts (dl, pairs) {
  dl.replaceChildren()
  for (const [k, v] of pairs) {
    if (v == null) continue
    dl.append(el('dt', k))
    const dd = el('dd')
    for (const line of Array.isArray(v) ? v : [v]) dd.append(el('div', line))
    dl.append(dd)
  }
}

const fmt = (x, d = 2) => x == null || !Number.isFinite(x) ? '–' : Number(x).toFixed(d)
function duration (s) {
  const d = Math.floor(s / 86400); const h = Math.floor(s % 86400 / 3600); const m = Math.floor(s % 3600 / 60)
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`
}

function chart (id, config) {
  state.charts[id] ??= new window.Chart($(id), { ...config, options: { animation: false, responsive: true, maintainAspectRatio: false, ...config.options } })
  return state.charts[id]
}

function renderNode () {
  const s = state.status
  const e = s.engine
  const hw = e?.hardware
  facts($('node-facts'), [
    ['peer id', s.peerId],
    ['addresses', s.addresses],
    ['engine', e != null ? `llama.cpp, gpu: ${e.gpu}, threads: ${e.threads === 0 ? 'all' : e.threads}` : null],
    ['device', hw != null ? [`${hw.cpuModel}, ${hw.cores} cores, ${hw.ramMiB} MiB RAM, backend ${hw.backend}`, ...hw.gpus.map(g => `${g.name} (${g.vramMiB} MiB)`)] : null],
    ['models', e?.models.map(m => m === e.defaultModel ? `${m} (default)` : m)],
    ['uptime', duration(s.uptime)],
    ['records', `${s.records} (${s.own} own) from ${s.authors} authors`],
    ['model snapshot', s.snapshot != null ? `${s.snapshot.rows} rows, ${s.snapshot.backend}, trained ${new Date(s.snapshot.trainedAt).toLocaleTimeString()}` : null]
  ])
  show('node', true)
}

function renderRates () {
  const pts = state.samples
  const series = [
    ['gossip received', x => sumOf(x, 'swarmtune_net_events_total', l => l.event === 'gossip_received') ?? 0],
    ['gossip accepted', x => sumOf(x, 'swarmtune_net_events_total', l => l.event === 'gossip_accepted') ?? 0],
    ['published', x => sumOf(x, 'swarmtune_net_events_total', l => l.event === 'gossip_published') ?? 0],
    ['rejected', x => sumOf(x, 'swarmtune_rejected_total') ?? 0]
  ]
  const c = chart('rates-chart', { type: 'line', data: { labels: [], datasets: series.map(([label]) => ({ label, data: [], pointRadius: 0, borderWidth: 2 })) }, options: { scales: { y: { beginAtZero: true } } } })
  c.data.labels = pts.slice(1).map(p => new Date(p.t).toLocaleTimeString())
  series.forEach(([, get], i) => {
    c.data.datasets[i].data = pts.slice(1).map((p, j) => rate(get(pts[j].samples), get(p.samples), (p.t - pts[j].t) / 1000))
  })
  c.update('none')
}

function renderAuthors () {
  const counts = authorCounts(state.records)
  $('authors-window').textContent = `(the latest ${state.records.length} records)`
  const c = chart('authors-chart', { type: 'bar', data: { labels: [], datasets: [{ label: 'records', data: [] }] }, options: { plugins: { legend: { display: false } } } })
  c.data.labels = counts.slice(0, 20).map(a => `…${a.author.slice(-8)}`)
  c.data.datasets[0].data = counts.slice(0, 20).map(a => a.count)
  c.update('none')
  const trust = new Map((state.trust?.authors ?? []).map(a => [a.author, a]))
  const rep = new Map((state.committee?.weights ?? []).map(w => [w.author, w]))
  const authors = [...new Set([...counts.map(a => a.author), ...trust.keys()])]
  const count = new Map(counts.map(a => [a.author, a.count]))
  const body = $('authors-table').tBodies[0]
  body.replaceChildren()
  for (const a of authors.slice(0, 200)) {
    const t = trust.get(a)
    const tr = el('tr')
    tr.append(el('td', a), el('td', count.get(a) ?? 0, 'num'), el('td', t?.status ?? '–'), el('td', fmt(t?.weight), 'num'), el('td', fmt(t?.score), 'num'), el('td', fmt(rep.get(a)?.weight), 'num'))
    body.append(tr)
  }
}

function renderSwarm () {
  const s = state.status
  const rejected = Object.entries(s.rejected ?? {}).map(([code, n]) => `${code}: ${n}`)
  facts($('swarm-facts'), [
    ['connected peers', `${s.peers} (${s.net?.gossipTopicPeers ?? 0} on the records topic)`],
    ['trust', s.trust != null ? `${s.trust.proven} proven, ${s.trust.unproven} unproven, ${s.trust.distrusted} distrusted, ${s.trust.graylisted} graylisted` : null],
    ['rejected', rejected.length > 0 ? rejected : 'none']
  ])
  renderRates()
  renderAuthors()
  show('swarm', true)
}

function renderHeatmap () {
  const t = speedupTable(state.records, state.model)
  const table = $('speedup')
  const head = el('tr')
  head.append(el('th', 'workload'), ...t.methods.map(m => el('th', m)))
  table.tHead.replaceChildren(head)
  table.tBodies[0].replaceChildren()
  for (const f of t.families) {
    const tr = el('tr')
    tr.append(el('th', f))
    for (const m of t.methods) {
      const cell = t.cells.get(`${f}\u0000${m}`)
      const td = el('td', cell != null ? `${cell.speedup.toFixed(2)}×` : '')
      if (cell != null) {
        td.title = `n = ${cell.n}`
        td.style.backgroundColor = speedupColor(cell.speedup)
      }
      tr.append(td)
    }
    table.tBodies[0].append(tr)
  }
  if (t.families.length === 0) table.tBodies[0].append(el('tr')).append(el('td', 'no baseline measurements for this model yet'))
}

function renderKnows () {
  const models = modelsOf(state.records)
  if (models.length === 0) return
  const select = $('model')
  if (!models.some(m => m.id === state.model)) state.model = models[0].id
  select.replaceChildren(...models.map(m => new Option(`${m.name} (${m.count} records)`, m.id, false, m.id === state.model)))
  const fam = $('rec-family')
  const families = [...new Set([...FAMILIES, ...state.records.map(r => r.body.workload.family)])]
  if (fam.options.length !== families.length) fam.replaceChildren(...families.map(f => new Option(f, f)))
  renderHeatmap()
  show('knows', true)
}

function renderServing () {
  const s = state.status.serving
  if (s == null) return
  const pts = state.samples
  const last = pts[pts.length - 1]?.samples ?? []
  facts($('serving-facts'), [
    ['requests', `${s.served} served, ${s.failed} failed`],
    ['queue', sumOf(last, 'swarmtune_serving_queue_depth') ?? s.queued],
    ['recommend answers', `${s.recommend?.answered ?? 0} over libp2p, ${s.recommends ?? 0} in all`]
  ])
  const tok = chart('tokens-chart', { type: 'line', data: { labels: [], datasets: [{ label: 'output tokens/s', data: [], pointRadius: 0, borderWidth: 2 }] }, options: { scales: { y: { beginAtZero: true } } } })
  const get = x => sumOf(x, 'swarmtune_serving_output_tokens_total') ?? 0
  tok.data.labels = pts.slice(1).map(p => new Date(p.t).toLocaleTimeString())
  tok.data.datasets[0].data = pts.slice(1).map((p, j) => rate(get(pts[j].samples), get(p.samples), (p.t - pts[j].t) / 1000))
  tok.update('none')
  const chosen = new Map()
  for (const x of last) if (x.name === 'swarmtune_serving_method_chosen_total' && x.value > 0) chosen.set(x.labels.method, (chosen.get(x.labels.method) ?? 0) + x.value)
  show('methods-box', chosen.size > 0)
  if (chosen.size > 0) {
    const mc = chart('methods-chart', { type: 'bar', data: { labels: [], datasets: [{ label: 'requests', data: [] }] }, options: { indexAxis: 'y', plugins: { legend: { display: false } } } })
    mc.data.labels = [...chosen.keys()]
    mc.data.datasets[0].data = [...chosen.values()]
    mc.update('none')
  }
  show('serving', true)
}

async function poll () {
  const [status, metrics] = await Promise.all([call('/status'), call('/metrics')])
  state.status = status
  state.samples.push({ t: Date.now(), samples: parseMetrics(metrics) })
  if (state.samples.length > HISTORY) state.samples.shift()
  if (state.polls % RECORDS_EVERY === 0) {
    const [records, trust, committee, evaluation] = await Promise.all([call(`/records?order=desc&limit=${RECORDS_LIMIT}`), optional('/trust'), optional('/committee'), optional('/meta/eval')])
    state.records = records.records
    state.trust = trust
    state.committee = committee
    renderKnows()
    renderQuality(evaluation, { section: 'eval-quality', table: 'eval-table', note: 'eval-note', chart: 'curve-chart', curveNote: 'curve-note' }, chart)
  }
  renderNode()
  renderSwarm()
  renderServing()
  await updateChoices(call, status)
  state.polls++
  document.body.dataset.polls = String(state.polls)
}

function askToken (err) {
  $('token-error').textContent = err.code === 'E_BAD_TOKEN' ? `${err.code}: ${err.message}` : ''
  show('token-form', true)
  $('state').textContent = 'waiting for the API token'
}

async function loop () {
  try {
    await poll()
    $('state').textContent = `updated ${new Date().toLocaleTimeString()}`
  } catch (err) {
    if (err.status === 401) { askToken(err); return }
    $('state').textContent = `error: ${err.code ?? 'E_FETCH'}: ${err.message}`
  }
  setTimeout(() => { void loop() }, POLL_MS)
}

async function recommend (ev) {
  ev.preventDefault()
  $('rec-error').textContent = ''
  const model = modelsOf(state.records).find(m => m.id === state.model)
  const req = {
    model: model != null ? { id: model.id, name: model.name } : state.model,
    family: $('rec-family').value,
    objective: $('rec-objective').value,
    features: {
      requests: Number($('rec-requests').value),
      promptTokensMean: Number($('rec-prompt').value),
      outputTokensMean: Number($('rec-output').value),
      sharedPrefixRatio: Number($('rec-shared').value)
    }
  }
  try {
    const ans = await call('/recommend', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) })
    renderRanking(ans)
  } catch (err) {
    $('rec-error').textContent = `${err.code ?? 'E_FETCH'}: ${err.message}`
    show('ranking', false)
  }
}

function renderRanking (ans) {
  $('rec-summary').textContent = `from ${ans.source}${ans.coldStart ? ' (cold start)' : ''}, ${ans.evidence.records} records by ${ans.evidence.authors} authors, task class ${ans.taskClass}${ans.reason != null ? `: ${ans.reason}` : ''}`
  const body = $('ranking').tBodies[0]
  body.replaceChildren()
  ans.ranking.forEach((r, i) => {
    const tr = el('tr')
    tr.append(el('td', i + 1, 'num'), el('td', r.method), el('td', fmt(r.predicted.speedup), 'num'), el('td', fmt(r.predicted.wallMs, 0), 'num'), el('td', fmt(r.predicted.ttftMs, 0), 'num'), el('td', fmt(r.uncertainty), 'num'), el('td', r.feasible === false ? `no${r.reason != null ? `: ${r.reason}` : ''}` : 'yes'))
    body.append(tr)
  })
  show('ranking', true)
}

$('model').addEventListener('change', () => { state.model = $('model').value; renderHeatmap() })
$('recommend-form').addEventListener('submit', ev => { void recommend(ev) })
$('token-form').addEventListener('submit', ev => {
  ev.preventDefault()
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim())
  show('token-form', false)
  void loop()
})
void loop()

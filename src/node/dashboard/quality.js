// The "how good the choices are" panels (issue #20, #17 item 6): the node's latest evaluation of
// its selectors on held-out folds of its own history, and its learning curve (GET /meta/eval,
// src/meta/learning-curve.ts). Shown only once the node has evaluated. Every string reaches the
// page as text (textContent, canvas text).

/** The curve as chart series: time labels, the default selector's regret and single-best's. Pure. */
export function curveSeries (curve) {
  const pick = (p, f) => p.rows.find(f)?.regret ?? null
  return {
    labels: curve.map(p => new Date(p.at).toLocaleTimeString()),
    records: curve.map(p => p.records),
    defaultRegret: curve.map(p => pick(p, r => r.default === true)),
    singleBestRegret: curve.map(p => pick(p, r => r.selector === 'single-best')),
    defaultName: [...curve].reverse().flatMap(p => p.rows).find(r => r.default === true)?.selector ?? 'default selector'
  }
}

function el (tag, text, cls) {
  const e = document.createElement(tag)
  if (text != null) e.textContent = String(text)
  if (cls != null) e.className = cls
  return e
}

const fmt = x => x == null || !Number.isFinite(x) ? '–' : Number(x).toFixed(3)

function renderTable (table, note, latest) {
  note.textContent = `held out by ${latest.grouping}: ${latest.folds} folds over ${latest.tasks} tasks (split ${latest.split}); * the daemon's default selector`
  const body = table.tBodies[0]
  body.replaceChildren()
  for (const r of latest.rows) {
    const tr = el('tr')
    tr.append(el('td', r.selector + (r.default === true ? ' *' : '')), el('td', fmt(r.top1), 'num'), el('td', fmt(r.regret), 'num'), el('td', fmt(r.oracleShare), 'num'))
    if (r.default === true) tr.className = 'default'
    body.append(tr)
  }
}

/**
 * Draws both panels from a /meta/eval answer (null: the route is not there) into the elements
 * named by `ids`; `chart(id, config)` makes or reuses a Chart.js chart. Returns whether shown.
 */
export function renderQuality (ev, ids, chart) {
  const $ = id => document.getElementById(id)
  if (ev == null || ev.latest == null) { $(ids.section).hidden = true; return false }
  renderTable($(ids.table), $(ids.note), ev.latest)
  const s = curveSeries(ev.curve)
  const c = chart(ids.chart, {
    type: 'line',
    data: { labels: [], datasets: [{ label: '', data: [], borderWidth: 2, spanGaps: true }, { label: 'single-best', data: [], borderWidth: 2, borderDash: [6, 4], spanGaps: true }] },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'regret (1 − perf/best)' } } } }
  })
  c.data.labels = s.labels
  c.data.datasets[0].label = s.defaultName
  c.data.datasets[0].data = s.defaultRegret
  c.data.datasets[1].data = s.singleBestRegret
  c.update('none')
  $(ids.curveNote).textContent = `${ev.curve.length} evaluations, ${s.records[0] ?? 0} → ${s.records[s.records.length - 1] ?? 0} records`
  $(ids.section).hidden = false
  return true
}

// The dashboard's "served choices: realized vs predicted" panel (issue #20, data from issue #17):
// the last served tasks whose method the node chose, from GET /serving/choices, and the mean
// |ln predicted/realized| of status.meta.servedPredictionError. Its own section, built here so the
// page's other panels and this one change in different files. Strings from the API are set as text.

const LIMIT = 50
const ROWS = 10

function el (tag, text, cls) {
  const e = document.createElement(tag)
  if (text != null) e.textContent = String(text)
  if (cls != null) e.className = cls
  return e
}

const fmt = (x, d = 1) => x == null || !Number.isFinite(x) ? '–' : Number(x).toFixed(d)

/** The panel's section, added to <main> once. */
function section () {
  let s = document.getElementById('choices')
  if (s != null) return s
  s = el('section')
  s.id = 'choices'
  s.hidden = true
  const h = el('h2', 'Served choices: realized vs predicted')
  const summary = el('p', null, 'muted')
  summary.id = 'choices-summary'
  const box = el('div', null, 'chart')
  box.append(el('h3', 'Total tokens/s of each served task (dashed: realized = predicted)'))
  const canvas = el('canvas')
  canvas.id = 'choices-chart'
  box.append(canvas)
  const table = el('table')
  table.id = 'choices-table'
  const head = el('tr')
  for (const [t, c] of [['time'], ['method'], ['chosen by'], ['predicted tok/s', 'num'], ['realized tok/s', 'num'], ['|ln error|', 'num']]) head.append(el('th', t, c))
  table.append(el('thead'), el('tbody'))
  table.tHead.append(head)
  s.append(h, summary, box, el('h3', `The last ${ROWS}`), table)
  document.querySelector('main').append(s)
  return s
}

let chartObj = null

function drawChart (points) {
  const canvas = document.getElementById('choices-chart')
  const max = Math.max(1, ...points.flatMap(p => [p.x, p.y]))
  const data = {
    datasets: [
      { type: 'scatter', label: 'served task', data: points, pointRadius: 4 },
      { type: 'line', label: 'realized = predicted', data: [{ x: 0, y: 0 }, { x: max, y: max }], borderDash: [6, 4], pointRadius: 0, borderWidth: 1 }
    ]
  }
  if (chartObj == null) {
    chartObj = new window.Chart(canvas, {
      type: 'scatter',
      data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { beginAtZero: true, title: { display: true, text: 'predicted' } }, y: { beginAtZero: true, title: { display: true, text: 'realized' } } }
      }
    })
  } else {
    chartObj.data = data
    chartObj.update('none')
  }
}

/**
 * One poll: `call` is the page's API call (token and errors handled there), `status` the latest
 * /status. A daemon without serving or without the route (404) shows nothing.
 */
export async function updateChoices (call, status) {
  if (status?.serving == null) return
  let reply
  try {
    reply = await call(`/serving/choices?limit=${LIMIT}`)
  } catch (err) {
    if (err.status === 404) return
    throw err
  }
  const choices = reply?.choices ?? []
  const s = section()
  const meta = status.meta ?? {}
  const predicted = choices.filter(c => c.predictedTokensPerSecond != null)
  document.getElementById('choices-summary').textContent = choices.length === 0
    ? 'no served task yet: send a chat or completion request'
    : `${choices.length} recent served tasks, ${predicted.length} with a prediction; mean |ln predicted/realized| over the last ${meta.servedPredictions ?? 0}: ${fmt(meta.servedPredictionError, 3)}`
  drawChart(predicted.map(c => ({ x: c.predictedTokensPerSecond, y: c.realizedTokensPerSecond })))
  const body = document.getElementById('choices-table').tBodies[0]
  body.replaceChildren()
  for (const c of choices.slice(-ROWS).reverse()) {
    const tr = el('tr')
    tr.dataset.method = c.method
    tr.append(el('td', new Date(c.at).toLocaleTimeString()), el('td', c.method), el('td', c.source), el('td', fmt(c.predictedTokensPerSecond), 'num'), el('td', fmt(c.realizedTokensPerSecond), 'num'), el('td', fmt(c.absLogError, 3), 'num'))
    body.append(tr)
  }
  s.hidden = false
}

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { packageRoot } from '../util/paths.js'
import { ApiError, type ApiReply, type ControlApi } from '../contracts/api.js'

/**
 * The dashboard (issue #20): a static page on the control port, `GET /`, whose plain ES-module
 * script polls the API (/status, /records, /trust, /committee, /metrics, /meta/eval, POST /recommend) from
 * the browser. No build step: the files in src/node/dashboard/ are served as they are, read
 * relative to the package root so the same files serve from src/ (tests) and dist/ (compiled),
 * and Chart.js comes from the installed package, so nothing is fetched from the network.
 */
/** The page may run only its own scripts and talk only to its own origin. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8'
}

/** path → file, the complete list: nothing else under the folder is reachable */
function assetFiles (): Record<string, string> {
  const dir = join(packageRoot(), 'src', 'node', 'dashboard')
  const chart = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js')
  return {
    '/': join(dir, 'index.html'),
    '/dashboard/app.js': join(dir, 'app.js'),
    '/dashboard/data.js': join(dir, 'data.js'),
    '/dashboard/quality.js': join(dir, 'quality.js'),
    '/dashboard/choices.js': join(dir, 'choices.js'),
    '/dashboard/style.css': join(dir, 'style.css'),
    '/dashboard/chart.umd.js': chart
  }
}

export function registerDashboardRoutes (api: ControlApi): void {
  const cache = new Map<string, string>()
  for (const [path, file] of Object.entries(assetFiles())) {
    const ext = file.slice(file.lastIndexOf('.') + 1)
    api.route('GET', path, (): ApiReply => {
      let text = cache.get(file)
      if (text == null) {
        try {
          text = readFileSync(file, 'utf8')
        } catch (err) {
          throw new ApiError(503, 'E_DASHBOARD_MISSING', `dashboard file ${file} is missing (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`)
        }
        cache.set(file, text)
      }
      return {
        text,
        contentType: TYPES[ext] ?? 'application/octet-stream',
        headers: { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache', 'referrer-policy': 'no-referrer' }
      }
    }, { public: true })
  }
}

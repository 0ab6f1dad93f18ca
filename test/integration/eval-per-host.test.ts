import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { synthHistory } from '../../src/meta/synthetic.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * Issue 16 item 5 through the real CLI: `eval --per-host` shows each machine's regret, `--json`
 * carries `perHost` and the stronger-learner rows (boosted trees on the pairwise prior), and
 * `--no-boost` leaves them out. Build first (`npx tsc -p .`). Correctness only, no timings.
 */
const run = promisify(execFile)
const root = mkdtempSync(join(tmpdir(), 'swarmtune-eval-host-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

async function cli (args: string[]): Promise<string> {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  const r = await run(process.execPath, [cliPath(), ...args], { cwd: root, timeout: 300_000, env: { ...process.env, XDG_DATA_HOME: join(root, 'xdg') } })
  return r.stdout
}

describe('swarmtune eval: per-host results and the stronger learners', () => {
  const file = join(root, 'history.jsonl')
  writeFileSync(file, synthHistory({ machines: 3, models: 1, workloads: 4, repeats: 1, seed: 4 }).map(b => JSON.stringify(b)).join('\n') + '\n')

  it('--json has a perHost entry per machine whose regrets pool back to the rows', async () => {
    const r = JSON.parse(await cli(['eval', '--history', file, '--split', 'hardware', '--no-ml', '--trees', '4', '--json'])) as {
      tasks: number
      rows: Array<{ selector: string, regret: number, default?: true }>
      perHost: Array<{ host: string, label: string, tasks: number, regret: Record<string, number> }>
      boostedSafeDefault?: { checks: unknown[] }
    }
    expect(r.rows.map(x => x.selector)).toEqual(expect.arrayContaining(['boosted-trees+pairwise-prior', 'boosted-trees+pairwise-prior+safe-default', 'histogram-forest(sklearn-defaults)+pairwise-prior']))
    expect(r.rows.filter(x => x.default === true).map(x => x.selector)).toEqual(['histogram-forest+pairwise-prior+safe-default'])
    expect(r.boostedSafeDefault?.checks).toHaveLength(3)
    expect(r.perHost).toHaveLength(3)
    expect(r.perHost.reduce((s, h) => s + h.tasks, 0)).toBe(r.tasks)
    for (const row of r.rows) {
      expect(r.perHost.reduce((s, h) => s + h.tasks * h.regret[row.selector], 0) / r.tasks, row.selector).toBeCloseTo(row.regret, 9)
    }
  }, 300_000)

  it('--per-host prints a line per machine; --no-boost leaves the stronger learners out', async () => {
    const out = await cli(['eval', '--history', file, '--split', 'workload', '--no-ml', '--trees', '4', '--per-host', '--no-boost'])
    expect(out).toMatch(/mean regret per host \(3 hosts/)
    expect(out).not.toMatch(/boosted-trees/)
    const hostLines = out.split('\n').filter(l => /^\S.*\s+\d+\s+(\d\.\d{4}\s*)+$/.test(l))
    expect(hostLines).toHaveLength(3)
  }, 300_000)
})

import { describe, it, expect, afterAll } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { packageRoot } from '../../src/util/paths.js'

/*
 * The layer rules of `npm run lint` (.dependency-cruiser.cjs, docs/ARCHITECTURE.md), run by the
 * real dependency-cruiser on small made-up trees: every kind of forbidden import is reported
 * with its rule, and the allowed directions pass.
 */
const root = packageRoot()
const config = join(root, '.dependency-cruiser.cjs')
const bin = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs')
const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

function tree (files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-layers-'))
  dirs.push(dir)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

/** The violations (json reporter) and the exit status of the reporter `npm run lint` uses. */
function cruise (dir: string): { status: number | null, violations: Array<{ rule: string, from: string, to: string }> } {
  const r = spawnSync(process.execPath, [bin, 'src', '--config', config, '--output-type', 'json'], { cwd: dir, encoding: 'utf8' })
  const out = JSON.parse(r.stdout) as { summary: { violations: Array<{ rule: { name: string }, from: string, to: string }> } }
  const lint = spawnSync(process.execPath, [bin, 'src', '--config', config], { cwd: dir, encoding: 'utf8' })
  return { status: lint.status, violations: out.summary.violations.map(v => ({ rule: v.rule.name, from: v.from, to: v.to })) }
}

describe('layer rules (npm run lint)', () => {
  it('reports an upward import, a same-layer import, a cycle and an unknown folder, each with its rule', () => {
    const dir = tree({
      'src/util/log.ts': "import { daemon } from '../node/daemon.js'\nexport const log = daemon\n",
      'src/node/daemon.ts': "import { harness } from '../testbed/harness.js'\nexport const daemon = harness\n",
      'src/testbed/harness.ts': 'export const harness = 1\n',
      'src/net/gossip.ts': "import { features } from '../meta/features.js'\nexport const gossip = features\n",
      'src/meta/features.ts': 'export const features = 1\n',
      'src/vote/a.ts': "import { b } from './b.js'\nexport const a = () => b\n",
      'src/vote/b.ts': "import { a } from './a.js'\nexport const b = () => a\n",
      'src/misc/thing.ts': "import { log } from '../util/log.js'\nexport const thing = log\n"
    })
    const { status, violations } = cruise(dir)
    expect(status).not.toBe(0)
    const rules = violations.map(v => `${v.rule} ${v.from} -> ${v.to}`)
    expect(rules).toContain('layer-util src/util/log.ts -> src/node/daemon.ts')
    expect(rules).toContain('layer-node src/node/daemon.ts -> src/testbed/harness.ts')
    expect(rules).toContain('layer-net src/net/gossip.ts -> src/meta/features.ts')
    expect(rules.some(r => r.startsWith('no-circular src/vote/'))).toBe(true)
    expect(rules.some(r => r.startsWith('src-folder-unknown src/misc/thing.ts'))).toBe(true)
  })

  it('passes imports that point down the layers (cli → testbed → node → serving → … → util)', () => {
    const dir = tree({
      'src/util/errors.ts': 'export const E = 1\n',
      'src/records/types.ts': "import { E } from '../util/errors.js'\nexport const R = E\n",
      'src/contracts/service.ts': "import { R } from '../records/types.js'\nexport const S = R\n",
      'src/store/store.ts': "import { S } from '../contracts/service.js'\nexport const ST = S\n",
      'src/net/index.ts': "import { ST } from '../store/store.js'\nexport const N = ST\n",
      'src/serving/service.ts': "import { N } from '../net/index.js'\nexport const SV = N\n",
      'src/node/daemon.ts': "import { SV } from '../serving/service.js'\nexport const D = SV\n",
      'src/testbed/processes.ts': "import { D } from '../node/daemon.js'\nexport const P = D\n",
      'src/cli/main.ts': "import { P } from '../testbed/processes.js'\nimport { D } from '../node/daemon.js'\nexport const M = P + D\n"
    })
    const { status, violations } = cruise(dir)
    expect(violations).toEqual([])
    expect(status).toBe(0)
  })

  it('knows every folder of src/ (a new folder must be given a layer)', () => {
    const require = createRequire(import.meta.url)
    const layers = (require(config) as { LAYERS: string[][] }).LAYERS.flat()
    const r = spawnSync('ls', [join(root, 'src')], { encoding: 'utf8' })
    expect(r.stdout.trim().split('\n').sort()).toEqual([...layers].sort())
  })
})

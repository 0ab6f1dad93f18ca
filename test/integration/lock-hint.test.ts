import { describe, it, expect, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath } from '../../src/util/paths.js'

/* Issue #18: the E_DATA_DIR_LOCKED hint named port 4100 whatever port the daemon had. Build first. */
const run = promisify(execFile)
const root = mkdtempSync(join(tmpdir(), 'swarmtune-lock-hint-'))
let d: DaemonProcess | undefined
afterAll(async () => {
  await d?.stop()
  rmSync(root, { recursive: true, force: true })
})

describe('a second command on a running daemon\'s data dir', () => {
  it('names the running daemon\'s real API address', async () => {
    const dataDir = join(root, 'd')
    d = await spawnDaemon({ dataDir, port: 0, apiPort: 0 })
    expect(d.info.api).not.toContain(':4100')
    const err = await run(process.execPath, [cliPath(), 'bench', '--data-dir', dataDir, '--model', 'tiny', '--methods', 'baseline', '--json'], { timeout: 60_000 })
      .then(() => undefined, (e: { stderr: string, code: number }) => e)
    expect(err?.code).not.toBe(0)
    expect(err?.stderr).toContain('E_DATA_DIR_LOCKED')
    expect(err?.stderr).toContain(`--api ${d.info.api}`)
  }, 90_000)
})

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * vitest globalSetup: a command run without --data-dir writes to the per-user data folder; the
 * suite points XDG_DATA_HOME at a temp dir (inherited by the workers and the daemons they
 * spawn) so no test writes into the real home directory.
 */
export default function setup (): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-xdg-'))
  process.env.XDG_DATA_HOME = dir
  return () => { rmSync(dir, { recursive: true, force: true }) }
}

import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root (holds package.json and config/), whether running from src/ or dist/src/. */
export function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('swarmtune package root not found')
    dir = up
  }
}

/** Path of the compiled CLI entry point, for spawning daemons as separate processes. */
export function cliPath (): string {
  return join(packageRoot(), 'dist', 'src', 'cli', 'main.js')
}

import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

/**
 * The data dir when neither config, environment nor flag names one: the per-user data folder
 * (XDG base directories), so that a run in a git clone does not leave a private key in the
 * working tree. A `./.swarmtune` holding an identity from older versions keeps being used.
 */
export interface DefaultDataDir {
  dir: string
  /** true when an existing ./.swarmtune (identity.key inside) was kept */
  legacy: boolean
}

export interface DataDirEnv {
  env?: NodeJS.ProcessEnv
  cwd?: string
  home?: string
}

export const LEGACY_DATA_DIR = '.swarmtune'

/** The default as users read it: every command's help and notice says it with these words, none copies them. */
export const DEFAULT_DATA_DIR_TEXT = '$XDG_DATA_HOME/swarmtune, else ~/.local/share/swarmtune'

/** The line each command's --help ends with when it takes --data-dir. */
export const DATA_DIR_HELP = `Data dir (--data-dir D, SWARMTUNE_DATA_DIR, or dataDir in --config F), by default
  ${DEFAULT_DATA_DIR_TEXT}
  (an existing ./${LEGACY_DATA_DIR} holding identity.key from an older version is still used).
`

export function defaultDataDir (opts: DataDirEnv = {}): DefaultDataDir {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  const legacy = resolve(cwd, LEGACY_DATA_DIR)
  if (existsSync(join(legacy, 'identity.key'))) return { dir: legacy, legacy: true }
  // the XDG spec: a relative $XDG_DATA_HOME is invalid and must be ignored
  const xdg = env.XDG_DATA_HOME
  if (xdg != null && xdg !== '' && isAbsolute(xdg)) return { dir: join(xdg, 'swarmtune'), legacy: false }
  const home = opts.home ?? (env.HOME != null && env.HOME !== '' ? env.HOME : homedir())
  return { dir: join(home, '.local', 'share', 'swarmtune'), legacy: false }
}

/** The one-line notice `start` prints when the old ./.swarmtune is kept. */
export function legacyNotice (dir: string): string {
  return `swarmtune: using the existing data dir ${dir} (the default is now ${DEFAULT_DATA_DIR_TEXT}; move it there or pass --data-dir to silence this)`
}

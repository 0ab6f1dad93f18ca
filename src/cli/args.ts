import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SwarmtuneError } from '../util/errors.js'

/** Flag parsing shared by all commands: node's parseArgs, with errors as E_USAGE. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>> (argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true })
  } catch (err) {
    throw new SwarmtuneError('E_USAGE', (err as Error).message)
  }
}

export function intFlag (value: string | undefined, name: string, fallback: number): number {
  if (value == null) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new SwarmtuneError('E_USAGE', `--${name} must be a non-negative integer, got "${value}"`)
  return n
}

/** A share in (0, 1], e.g. --max-features. */
export function fractionFlag (value: string | undefined, name: string, fallback: number): number {
  if (value == null) return fallback
  const n = Number(value)
  if (!(n > 0 && n <= 1)) throw new SwarmtuneError('E_USAGE', `--${name} must be a number in (0, 1], got "${value}"`)
  return n
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

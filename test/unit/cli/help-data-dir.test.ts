import { describe, it, expect, vi, afterEach } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DATA_DIR_HELP, DEFAULT_DATA_DIR_TEXT, LEGACY_DATA_DIR } from '../../../src/node/data-dir.js'

/* Issue #20: every command's help states the real data-dir default, from the one shared text. */
const dir = join(import.meta.dirname, '..', '..', '..', 'src', 'cli', 'commands')
const commands = readdirSync(dir).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3))

async function helpOf (name: string): Promise<string> {
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true })
  try {
    const mod = await import(join(dir, `${name}.ts`)) as { run: (argv: string[]) => Promise<number> }
    expect(await mod.run(['--help'])).toBe(0)
  } finally {
    spy.mockRestore()
  }
  return out
}

describe('--data-dir help texts', () => {
  afterEach(() => { vi.restoreAllMocks() })
  it('finds the commands', () => {
    expect(commands).toContain('start')
    expect(commands.length).toBeGreaterThan(10)
  })
  it.each(commands)('%s: a command that takes --data-dir states the default; none names the old one', async name => {
    const help = await helpOf(name)
    expect(help).toMatch(/^usage: swarmtune /)
    if (help.includes('--data-dir')) {
      expect(help).toContain(DATA_DIR_HELP)
      expect(help).toContain(DEFAULT_DATA_DIR_TEXT)
    }
    // outside the shared text, nothing mentions ./.swarmtune (the default before issue #20)
    expect(help.replace(DATA_DIR_HELP, '')).not.toContain(LEGACY_DATA_DIR)
  }, 30_000)
})

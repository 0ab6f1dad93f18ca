import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliPath } from '../../src/util/paths.js'

/* Issue #20: the default data dir, the old ./.swarmtune, and a busy port, through the real CLI. Build first. */
const root = mkdtempSync(join(tmpdir(), 'swarmtune-start-defaults-'))
const procs: ChildProcess[] = []
const servers: Server[] = []
afterAll(async () => {
  for (const p of procs) if (p.exitCode == null && p.signalCode == null) p.kill('SIGKILL')
  for (const s of servers) s.close()
  rmSync(root, { recursive: true, force: true })
})

interface Outcome { code: number | null, stdout: string, stderr: string }

/** `swarmtune start --json …`: resolves at the start line (then stops the daemon) or at exit. */
async function start (args: string[], opts: { cwd: string, env: Record<string, string> }): Promise<Outcome> {
  const p = spawn(process.execPath, [cliPath(), 'start', '--json', '--api-port', '0', '--no-background', ...args], {
    cwd: opts.cwd,
    env: { ...process.env, SWARMTUNE_LOCAL_TESTBED: 'true', SWARMTUNE_VERIFY_WORKERS: '0', SWARMTUNE__engine__prepareOnStart: 'false', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  procs.push(p)
  let stdout = ''
  let stderr = ''
  p.stderr!.on('data', (b: Buffer) => { stderr += b.toString() })
  return await new Promise(resolve => {
    p.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString()
      if (stdout.includes('\n')) p.kill('SIGTERM')
    })
    p.once('exit', code => { resolve({ code, stdout, stderr }) })
  })
}

async function holdPort (): Promise<number> {
  const s = createServer()
  servers.push(s)
  await new Promise<void>(resolve => { s.listen(0, '127.0.0.1', resolve) })
  return (s.address() as { port: number }).port
}

describe('swarmtune start', () => {
  it('keeps its data in $XDG_DATA_HOME/swarmtune, not in the current directory', async () => {
    const cwd = join(root, 'clone')
    mkdirSync(cwd)
    const xdg = join(root, 'xdg')
    const r = await start(['--listen', '/ip4/127.0.0.1/tcp/0'], { cwd, env: { XDG_DATA_HOME: xdg, HOME: join(root, 'home') } })
    expect(JSON.parse(r.stdout.split('\n')[0]).dataDir).toBe(join(xdg, 'swarmtune'))
    expect(r.stderr).not.toContain('existing data dir')
  }, 60_000)

  it('keeps using an existing ./.swarmtune with a one-line notice', async () => {
    const cwd = join(root, 'old-clone')
    mkdirSync(join(cwd, '.swarmtune'), { recursive: true })
    // an identity from an earlier run of the old default
    const first = await start(['--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(cwd, '.swarmtune')], { cwd, env: { XDG_DATA_HOME: join(root, 'xdg2') } })
    const oldPeer = JSON.parse(first.stdout.split('\n')[0]).peerId
    const r = await start(['--listen', '/ip4/127.0.0.1/tcp/0'], { cwd, env: { XDG_DATA_HOME: join(root, 'xdg2') } })
    const info = JSON.parse(r.stdout.split('\n')[0])
    expect(info.dataDir).toBe(join(cwd, '.swarmtune'))
    expect(info.peerId).toBe(oldPeer)
    const notice = r.stderr.split('\n').filter(l => l.includes('existing data dir'))
    expect(notice).toHaveLength(1)
    expect(notice[0]).toContain(join(cwd, '.swarmtune'))
  }, 60_000)

  it('a busy libp2p port is one line with a code naming --listen, and the process exits', async () => {
    const port = await holdPort()
    const r = await start(['--data-dir', join(root, 'busy'), '--listen', `/ip4/127.0.0.1/tcp/${port}`], { cwd: root, env: {} })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('[E_LISTEN_PORT_IN_USE]')
    expect(lines[0]).toContain(`/ip4/127.0.0.1/tcp/${port}`)
    expect(lines[0]).toContain('--listen')
  }, 60_000)

  it('a busy API port is one line naming --api-port, and the process exits', async () => {
    const port = await holdPort()
    const r = await start(['--data-dir', join(root, 'busy-api'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(port)], { cwd: root, env: {} })
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('[E_API_PORT_IN_USE]')
    expect(lines[0]).toContain('--api-port')
  }, 60_000)
})

import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { SwarmtuneError } from '../util/errors.js'
import { cliPath } from '../util/paths.js'

/**
 * Daemons as separate processes (`node dist/src/cli/main.js start --json`), for the testbed
 * command, the integration tests and the benchmarks. Needs the compiled CLI (`npx tsc -p .`).
 */
export interface DaemonInfo { peerId: string, addresses: string[], api: string, dataDir: string }

export interface SpawnOptions {
  dataDir: string
  /** libp2p TCP port on 127.0.0.1 (0 = any) */
  port: number
  /** control API port on 127.0.0.1 (0 = any) */
  apiPort: number
  bootstrap?: string[]
  /**
   * extra environment (e.g. SWARMTUNE__net__sync__intervalMs); the background sweep is off
   * unless this sets SWARMTUNE__bench__background__enabled: tests and benchmarks must not be
   * disturbed by it
   */
  env?: Record<string, string>
  /** how long to wait for the start line */
  timeoutMs?: number
  /** a command the daemon runs under, e.g. ['prlimit', '--fsize=1048576:unlimited', '--'] (it must exec node, keeping the pid) */
  prefix?: string[]
  /** more `swarmtune start` flags, e.g. ['--publish-hardware', 'capability'] */
  args?: string[]
}

export interface DaemonProcess {
  info: DaemonInfo
  proc: ChildProcess
  /** the last lines the daemon wrote to stderr, for error reports */
  stderr: () => string
  /** resolves with the exit code (or signal name) once the process has exited */
  exited: Promise<number | string>
  /** SIGTERM and wait (SIGKILL after graceMs) */
  stop: (graceMs?: number) => Promise<void>
}

/** The multiaddr of a daemon that others on this machine should dial. */
export function loopbackAddr (info: DaemonInfo): string {
  return info.addresses.find(a => a.startsWith('/ip4/127.0.0.1/')) ?? info.addresses[0]
}

/**
 * The host-coordination directory of spawned daemons (bench.hostLock.dir): one per parent of
 * their data dirs, so the daemons of one testbed take turns benchmarking (as daemons of one
 * user on one machine do) while separate testbeds and test files do not wait for each other.
 */
export function hostDirOf (dataDir: string): string {
  return join(dirname(dataDir), '.host')
}

export async function spawnDaemon (opts: SpawnOptions): Promise<DaemonProcess> {
  const args = [cliPath(), 'start', '--json', '--data-dir', opts.dataDir,
    '--listen', `/ip4/127.0.0.1/tcp/${opts.port}`, '--api-host', '127.0.0.1', '--api-port', String(opts.apiPort)]
  if (opts.bootstrap != null && opts.bootstrap.length > 0) args.push('--bootstrap', opts.bootstrap.join(','))
  if (opts.args != null) args.push(...opts.args)
  // debugging aid: extra node flags for the daemons, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (NODE_OPTIONS refuses --cpu-prof)
  const nodeArgs = (process.env.SWARMTUNE_TESTBED_NODE_ARGS ?? '').split(/\s+/).filter(a => a !== '')
  const argv = [process.execPath, ...nodeArgs, ...args]
  const cmd = [...(opts.prefix ?? []), ...argv]
  const proc = spawn(cmd[0], cmd.slice(1), {
    // many daemons share this box: each verifies inline rather than starting a worker per core
    // and none writes the default model's files at start unless asked (tests of the first answer do)
    env: { ...process.env, SWARMTUNE_LOCAL_TESTBED: 'true', SWARMTUNE_VERIFY_WORKERS: '0', SWARMTUNE__bench__background__enabled: 'false', SWARMTUNE__meta__evalIntervalMs: '0', SWARMTUNE__engine__prepareOnStart: 'false', SWARMTUNE__bench__hostLock__dir: hostDirOf(opts.dataDir), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const errLines: string[] = []
  createInterface({ input: proc.stderr! }).on('line', line => {
    errLines.push(line)
    if (errLines.length > 50) errLines.shift()
  })
  const stderr = (): string => errLines.join('\n')
  const exited = new Promise<number | string>(resolve => {
    proc.once('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown') })
  })
  const lines = createInterface({ input: proc.stdout! })
  const info = await new Promise<DaemonInfo>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new SwarmtuneError('E_DAEMON_START', `daemon in ${opts.dataDir} did not start within ${opts.timeoutMs ?? 30_000} ms\n${stderr()}`))
    }, opts.timeoutMs ?? 30_000)
    lines.once('line', line => {
      clearTimeout(timer)
      try { resolve(JSON.parse(line) as DaemonInfo) } catch { reject(new SwarmtuneError('E_DAEMON_START', `unexpected start line: ${line}`)) }
    })
    void exited.then(code => {
      clearTimeout(timer)
      // give the stderr reader a moment to collect the error message
      setTimeout(() => { reject(new SwarmtuneError('E_DAEMON_START', `daemon in ${opts.dataDir} exited (${code}) before starting: ${stderr()}`)) }, 50)
    })
  })
  lines.on('line', () => {}) // keep draining stdout
  return {
    info,
    proc,
    stderr,
    exited,
    async stop (graceMs = 10_000) {
      if (proc.exitCode != null || proc.signalCode != null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => { proc.kill('SIGKILL') }, graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}

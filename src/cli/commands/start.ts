import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { intFlag, parseFlags } from '../args.js'
import { apiGet } from '../../node/api-client.js'
import { waitFor } from '../../util/wait.js'
import { loadConfig } from '../../node/config.js'
import { createDaemon, SHUTDOWN_GRACE_MS, stopOnSignals } from '../../node/daemon.js'
import { DATA_DIR_HELP, legacyNotice } from '../../node/data-dir.js'

const HELP = `usage: swarmtune start [flags]
  --config FILE          JSON config merged over config/default.json
  --data-dir DIR         identity key + LevelDB store (default below)
  --listen MA[,MA...]    libp2p listen multiaddrs (default /ip4/0.0.0.0/tcp/4101)
  --bootstrap MA[,MA...] peers to dial at start (with /p2p/<peer id>)
  --bootstrap-api URL    also bootstrap to the node whose control API answers at URL (waits for it;
                         env SWARMTUNE_BOOTSTRAP_API; docker-compose uses this)
  --api-port P           control API port (default 4100; 0 = any free port)
  --api-host H           control API host (default 127.0.0.1); beyond loopback every request needs
                         the bearer token in <data dir>/api-token (created, mode 0600)
  --local-testbed        loopback swarm: relax per-IP limits
  --no-background        do not benchmark this machine in the background (bench.background.enabled;
                         on by default: a quick first pass, then ~10 % of wall time while idle)
  --publish-hardware M   full (default) or capability: own records name only a capability class of
                         this machine, no CPU model, GPU names or exact memory (engine.publishHardware;
                         env SWARMTUNE_PUBLISH_HARDWARE)
  --json                 print one JSON line {peerId, addresses, api, dataDir} once started
Environment: SWARMTUNE_DATA_DIR, SWARMTUNE_LISTEN, SWARMTUNE_BOOTSTRAP, SWARMTUNE_API_PORT, ...
${DATA_DIR_HELP}`

/** how long the rest of a stop may take after the in-flight grace, before the watchdog exits */
const STOP_SLACK_MS = 5000

const csv = (s: string): string[] => s.split(',').map(x => x.trim()).filter(x => x !== '')

/** The non-loopback listen addresses of the node at `api`: its peer id is not known in advance. */
async function addressesFrom (api: string): Promise<string[]> {
  const s = await waitFor(`the bootstrap node at ${api}`, async () => await apiGet<{ addresses: string[] }>(api, '/status'), 120_000, 1000)
  const remote = s.addresses.filter(a => !a.startsWith('/ip4/127.') && !a.startsWith('/ip6/::1/'))
  return remote.length > 0 ? remote : s.addresses
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    listen: { type: 'string' },
    bootstrap: { type: 'string' },
    'bootstrap-api': { type: 'string' },
    'api-port': { type: 'string' },
    'api-host': { type: 'string' },
    'local-testbed': { type: 'boolean' },
    'no-background': { type: 'boolean' },
    'publish-hardware': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }

  const net: Record<string, unknown> = {}
  if (f.listen != null) net.listen = csv(f.listen)
  if (f.bootstrap != null) net.bootstrap = csv(f.bootstrap)
  const bootstrapApi = f['bootstrap-api'] ?? process.env.SWARMTUNE_BOOTSTRAP_API
  if (f['local-testbed'] === true) net.localTestbed = true
  const api: Record<string, unknown> = {}
  if (f['api-port'] != null) api.port = intFlag(f['api-port'], 'api-port', 0)
  if (f['api-host'] != null) api.host = f['api-host']
  const config = loadConfig({
    file: f.config,
    onLegacyDataDir: dir => process.stderr.write(legacyNotice(dir) + '\n'),
    overrides: {
      ...(f['data-dir'] != null ? { dataDir: f['data-dir'] } : {}),
      net,
      api,
      ...(f['no-background'] === true ? { bench: { background: { enabled: false } } } : {}),
      // checked by the config schema like the key itself (E_CONFIG names engine.publishHardware)
      ...(f['publish-hardware'] != null ? { engine: { publishHardware: f['publish-hardware'] } } : {})
    } as never
  })

  if (bootstrapApi != null && bootstrapApi !== '') config.net.bootstrap.push(...await addressesFrom(bootstrapApi.replace(/\/+$/, '')))

  const daemon = createDaemon(config)
  const stopped = stopOnSignals(daemon)
  // a stop that hangs (a stuck handle) must not keep the process forever: in-flight work gets
  // SHUTDOWN_GRACE_MS, the rest of the stop a few seconds more
  const watchdog = (): void => {
    setTimeout(() => {
      process.stderr.write(`swarmtune: stop did not finish within ${SHUTDOWN_GRACE_MS + STOP_SLACK_MS} ms; exiting [E_STOP_TIMEOUT]\n`)
      process.exit(1)
    }, SHUTDOWN_GRACE_MS + STOP_SLACK_MS).unref()
  }
  process.once('SIGTERM', watchdog)
  process.once('SIGINT', watchdog)
  // a file-size limit (ulimit -f, a quota) kills a process on SIGXFSZ by default: handled, the
  // write fails with EFBIG instead and the store reports itself full (E_STORE_FULL) and recovers
  process.on('SIGXFSZ', () => {})
  try {
    await daemon.start()
  } catch (err) {
    await daemon.stop().catch(() => {})
    // a handle libp2p leaves behind after a failed listen kept the process alive: exit anyway
    setTimeout(() => { process.exit(1) }, 2000).unref()
    throw err
  }
  const c = daemon.components
  const info = { peerId: c.peerId.toString(), addresses: c.network.addresses(), api: c.api.url(), dataDir: config.dataDir }
  // the running daemon's real API address, for hints given to other commands on this data dir
  writeFileSync(join(config.dataDir, 'api-url'), info.api + '\n')
  const access = daemon.apiAccess
  // one line, also with --json (stderr): who can call this API and with what
  if (access.required) process.stderr.write(`swarmtune: control API on ${info.api} requires Authorization: Bearer <token>; token ${access.token.created ? 'created in' : 'from'} ${access.token.source}\n`)
  if (f.json === true) {
    process.stdout.write(JSON.stringify(info) + '\n')
  } else {
    process.stdout.write([
      `swarmtune node ${info.peerId}`,
      ...info.addresses.map(a => `  listening  ${a}`),
      `  control API ${info.api}`,
      `  data dir   ${info.dataDir}`,
      'Ctrl-C to stop.',
      ''
    ].join('\n'))
  }
  const signal = await stopped
  rmSync(join(config.dataDir, 'api-url'), { force: true })
  if (f.json !== true) process.stdout.write(`stopped (${signal})\n`)
  // everything of ours is closed (store flushed, network stopped), but libp2p leaves timers behind
  // (gossipsub's next heartbeat, the address manager's 1 s debounce) that held the process ~1 s
  // more: exit once main has set the exit code, without waiting for them
  setTimeout(() => { process.exit() }, 0).unref()
  return 0
}

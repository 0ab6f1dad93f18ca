import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { loadConfig, type SwarmtuneConfig } from '../node/config.js'
import type { RecordStore } from '../store/types.js'
import { SwarmtuneError, errorCode } from '../util/errors.js'

/**
 * A data dir's store and identity opened by a CLI command itself (no daemon): `bench`,
 * `import --data-dir`, `export --data-dir`. LevelDB allows one opener, so a running daemon on the same dir is named
 * with the flag that goes through it instead.
 */
export interface LocalStore {
  config: SwarmtuneConfig
  store: RecordStore
  privateKey: PrivateKey
  author: string
}

export async function openLocalStore (dataDir: string | undefined, configFile: string | undefined, command: string): Promise<LocalStore> {
  const config = loadConfig({ file: configFile, overrides: dataDir != null ? { dataDir: resolve(dataDir) } : undefined })
  const [{ loadOrCreateIdentity }, { createRecordStore }] = await Promise.all([
    import('../node/identity.js'),
    import('../store/record-store.js')
  ])
  const { privateKey, peerId } = await loadOrCreateIdentity(config.dataDir)
  const author = peerId.toString()
  const store = createRecordStore({ path: join(config.dataDir, 'store'), maxRecords: config.store.maxRecords, writeBufferMb: config.store.writeBufferMb, ownAuthor: author, dataDir: config.dataDir })
  try {
    await store.start()
  } catch (err) {
    if (errorCode(err) === 'E_DATA_DIR_LOCKED') {
      // the daemon writes its real address at start; this command's config may name another port
      let url = `http://${config.api.host}:${config.api.port}`
      try { url = readFileSync(join(config.dataDir, 'api-url'), 'utf8').trim() } catch {}
      throw new SwarmtuneError('E_DATA_DIR_LOCKED', `a swarmtune daemon is running on ${config.dataDir}: run \`swarmtune ${command}\` through it with --api URL (e.g. --api ${url})`)
    }
    throw err
  }
  return { config, store, privateKey, author }
}

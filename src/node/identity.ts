import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { SwarmtuneError } from '../util/errors.js'

export const IDENTITY_FILE = 'identity.key'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  /** where the key lives */
  file: string
  /** true when this call generated the key */
  created: boolean
}

/**
 * The node's ed25519 key, created on first start at <dataDir>/identity.key (libp2p protobuf
 * encoding, mode 0600) and reused afterwards, so the peer id is stable across restarts. A key
 * file that group or others can read is refused rather than silently used: it may have leaked.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<Identity> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const file = join(dataDir, IDENTITY_FILE)
  let bytes: Buffer | undefined
  try {
    const st = statSync(file)
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new SwarmtuneError('E_KEY_PERMISSIONS', `key file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`)
    }
    bytes = readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes != null) {
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new SwarmtuneError('E_KEY_INVALID', `key file ${file} is not a libp2p private key: ${(err as Error).message}`, { cause: err })
    }
    if (privateKey.type !== 'Ed25519') throw new SwarmtuneError('E_KEY_INVALID', `key file ${file} holds a ${privateKey.type} key, expected Ed25519`)
    return { privateKey, peerId: peerIdFromPrivateKey(privateKey), file, created: false }
  }
  const privateKey = await generateKeyPair('Ed25519')
  // write-then-rename so a crash never leaves a truncated key behind
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, privateKeyToProtobuf(privateKey), { mode: 0o600 })
  chmodSync(tmp, 0o600) // the umask may have narrowed it further, never widened: make it exact
  renameSync(tmp, file)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), file, created: true }
}

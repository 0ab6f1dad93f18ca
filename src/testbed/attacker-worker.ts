import '../util/polyfill.js'
import { parentPort, workerData } from 'node:worker_threads'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createSwarmLibp2p } from '../net/libp2p.js'
import { resolveLimits } from '../net/limits.js'
import { RECORDS_TOPIC } from '../net/types.js'
import { loopbackConfig } from './loopback.js'

/**
 * The flooding attacker of the harness (attack-harness.ts) in its own thread, so its
 * publishing loop does not delay the harness's recommend latency probe. Input (workerData):
 * { key: protobuf private key, dataDir, targets: multiaddrs, wires: Uint8Array[], rate };
 * posts { peerId } once connected, then { sent, ms } when done.
 */
interface Init { key: Uint8Array, dataDir: string, targets: string[], wires: Uint8Array[], rate: number }
const init = workerData as Init

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function main (): Promise<void> {
  const node = await createSwarmLibp2p({ config: loopbackConfig({ dataDir: init.dataDir }), privateKey: privateKeyFromProtobuf(init.key), limits: resolveLimits() })
  await node.start()
  for (const t of init.targets) await node.dial(multiaddr(t)).catch(() => {})
  const deadline = Date.now() + 30_000
  while (node.services.pubsub.getSubscribers(RECORDS_TOPIC).length < init.targets.length && Date.now() < deadline) await sleep(100)
  parentPort?.postMessage({ peerId: node.peerId.toString() })
  const t0 = Date.now()
  let sent = 0
  const tickMs = 10
  while (sent < init.wires.length) {
    const due = Math.min(init.wires.length, Math.floor((Date.now() - t0) * init.rate / 1000) + 1)
    const batch: Array<Promise<unknown>> = []
    // not awaited one by one: a flooder does not wait for its victims
    for (; sent < due; sent++) batch.push(node.services.pubsub.publish(RECORDS_TOPIC, init.wires[sent]).catch(() => {}))
    await Promise.race([Promise.all(batch), sleep(tickMs)])
    await sleep(tickMs)
  }
  parentPort?.postMessage({ sent, ms: Date.now() - t0 })
  await sleep(500)
  await node.stop()
}

main().catch(err => { parentPort?.postMessage({ error: (err as Error).message }) })

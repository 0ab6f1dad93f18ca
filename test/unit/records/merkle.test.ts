import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  EMPTY_FRONTIER, appendLeaf, appendLeafInPlace, decodeFrontier, encodeFrontier, frontierRoot, isFrontier, leafHash, merkleRoot, toHex, type Frontier
} from '../../../src/records/merkle.js'
import { decodeLogHead, headsToKeep, signLogHead, verifyLogHead } from '../../../src/records/log-head.js'
import { canonicalBytes } from '../../../src/records/canonical.js'
import { encodeEnvelope } from '../../../src/records/codec.js'

// RFC 6962 test vectors (certificate-transparency merkle_tree_test): the 8 leaf inputs and the
// root of the first n of them
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(h => Uint8Array.from(Buffer.from(h, 'hex')))
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'
]

describe('RFC 6962 Merkle tree', () => {
  it('the empty tree is SHA-256 of nothing', () => {
    expect(toHex(frontierRoot(EMPTY_FRONTIER))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(toHex(merkleRoot([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it('matches the RFC 6962 vectors, both by recursion and by frontier', () => {
    const leaves = INPUTS.map(leafHash)
    let f: Frontier = EMPTY_FRONTIER
    for (let n = 1; n <= 8; n++) {
      f = appendLeaf(f, leaves[n - 1])
      expect(toHex(merkleRoot(leaves.slice(0, n)))).toBe(ROOTS[n - 1])
      expect(toHex(frontierRoot(f))).toBe(ROOTS[n - 1])
      expect(isFrontier(f)).toBe(true)
    }
  })

  it('frontier root equals the recursive root for every length up to 300', () => {
    const leaves = Array.from({ length: 300 }, (_, i) => leafHash(Uint8Array.of(i & 255, i >> 8)))
    const f: Frontier = { length: 0, peaks: [] }
    for (let n = 1; n <= leaves.length; n++) {
      appendLeafInPlace(f, leaves[n - 1])
      expect(f.peaks.length).toBe(n.toString(2).replace(/0/g, '').length)
      if (n % 7 === 0 || n === 256 || n === 300) expect(toHex(frontierRoot(f))).toBe(toHex(merkleRoot(leaves.slice(0, n))))
    }
  })

  it('changing, dropping, swapping or adding a leaf changes the root', () => {
    const leaves = Array.from({ length: 13 }, (_, i) => leafHash(Uint8Array.of(i)))
    const root = toHex(merkleRoot(leaves))
    const changed = leaves.slice(); changed[5] = leafHash(Uint8Array.of(99))
    const swapped = leaves.slice(); [swapped[2], swapped[3]] = [swapped[3], swapped[2]]
    for (const other of [changed, swapped, leaves.slice(0, 12), [...leaves, leafHash(Uint8Array.of(13))]]) {
      expect(toHex(merkleRoot(other))).not.toBe(root)
    }
    // a leaf is never confused with an internal node (the 0x00 / 0x01 prefixes)
    expect(toHex(leafHash(Uint8Array.from([...leaves[0], ...leaves[1]])))).not.toBe(toHex(merkleRoot(leaves.slice(0, 2))))
  })

  it('frontiers round-trip through their storage form; malformed ones are refused', () => {
    let f: Frontier = EMPTY_FRONTIER
    for (let i = 0; i < 11; i++) f = appendLeaf(f, leafHash(Uint8Array.of(i)))
    const back = decodeFrontier(encodeFrontier(f))
    expect(back).toBeDefined()
    expect(toHex(frontierRoot(back as Frontier))).toBe(toHex(frontierRoot(f)))
    expect(decodeFrontier(encodeFrontier(EMPTY_FRONTIER))).toEqual({ length: 0, peaks: [] })
    expect(decodeFrontier('11:' + 'ab'.repeat(32))).toBeUndefined() // 11 has three set bits
    expect(decodeFrontier('x')).toBeUndefined()
    expect(decodeFrontier('1:abcd')).toBeUndefined()
  })
})

describe('signed log heads', () => {
  it('sign → decode → verify; the signature is over its own domain', async () => {
    const key = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(key).toString()
    const root = merkleRoot(INPUTS.map(leafHash))
    const head = await signLogHead(key, author, 8, root, 1_800_000_000_000)
    const got = await verifyLogHead(head.wire)
    expect(got.body).toEqual({ v: 1, author, length: 8, root: ROOTS[7], timestamp: 1_800_000_000_000 })
    // the same bytes signed as a record (another domain) do not verify as a head
    const asRecord = encodeEnvelope(head.bytes, await key.sign(Uint8Array.from([...new TextEncoder().encode('swarmtune/record/v1\n'), ...head.bytes])))
    await expect(verifyLogHead(asRecord)).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' })
  })

  it('tampering with the root, the length or the signer is detected', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(key).toString()
    const head = await signLogHead(key, author, 3, merkleRoot(INPUTS.slice(0, 3).map(leafHash)))
    const reencode = (body: Record<string, unknown>): Uint8Array => encodeEnvelope(canonicalBytes(body), head.signature)
    await expect(verifyLogHead(reencode({ ...head.body, length: 4 }))).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' })
    await expect(verifyLogHead(reencode({ ...head.body, root: ROOTS[0] }))).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' })
    const byOther = await signLogHead(other, author, 3, merkleRoot(INPUTS.slice(0, 3).map(leafHash)))
    await expect(verifyLogHead(byOther.wire)).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' })
    const flipped = Uint8Array.from(head.wire); flipped[10] ^= 1
    await expect(verifyLogHead(flipped)).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' })
  })

  it('malformed heads are refused with a code before any signature work', () => {
    const sig = new Uint8Array(64)
    const author = '12D3KooWRsGBdtkqfJrFZ6jUDvNZLMLTfDUp8hcSgeuWHyn2b1QS'
    const enc = (body: unknown): Uint8Array => encodeEnvelope(canonicalBytes(body), sig)
    const ok = { v: 1, author, length: 1, root: ROOTS[0], timestamp: 1 }
    expect(decodeLogHead(enc(ok)).body.length).toBe(1)
    expect(() => decodeLogHead(enc({ ...ok, v: 2 }))).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_VERSION' }))
    expect(() => decodeLogHead(enc({ ...ok, length: 0 }))).toThrow(expect.objectContaining({ code: 'E_MALFORMED' }))
    expect(() => decodeLogHead(enc({ ...ok, root: 'AB' }))).toThrow(expect.objectContaining({ code: 'E_MALFORMED' }))
    expect(() => decodeLogHead(enc({ ...ok, extra: 1 }))).toThrow(expect.objectContaining({ code: 'E_MALFORMED' }))
    expect(() => decodeLogHead(enc({ ...ok, author: 'nope' }))).toThrow(expect.objectContaining({ code: 'E_MALFORMED_ID' }))
    expect(() => decodeLogHead(encodeEnvelope(new TextEncoder().encode('{"v":1, "x":2}'), sig))).toThrow(expect.objectContaining({ code: 'E_MALFORMED' }))
    expect(() => decodeLogHead(new Uint8Array(2000))).toThrow(expect.objectContaining({ code: 'E_OVERSIZE' }))
  })
})

describe('which log heads a store keeps (headsToKeep)', () => {
  /** every position that had a head within reach still has a kept one */
  const reachable = (all: number[], kept: Set<number>, reach: number): boolean => {
    const max = Math.max(...all)
    for (let p = 0; p < max; p += 7) {
      const before = all.some(n => n > p && n <= p + reach)
      const after = [...kept].some(n => n > p && n <= p + reach)
      if (before && !after) return false
    }
    return true
  }

  it('an author that signs a head every 30 records keeps O(length / reach) heads, the latest among them, every position still in reach', () => {
    const lengths = Array.from({ length: 3000 }, (_, i) => 30 * (i + 1))
    const kept = headsToKeep(lengths, 4096)
    expect(kept.has(90_000)).toBe(true)
    expect(kept.size).toBeLessThanOrEqual(2 * 90_000 / 4096 + 2)
    expect(kept.size).toBeGreaterThanOrEqual(90_000 / 4096)
    expect(reachable(lengths, kept, 4096)).toBe(true)
    // kept heads two apart are more than a reach apart
    const k = [...kept].sort((a, b) => a - b)
    for (let i = 2; i < k.length; i++) expect(k[i] - k[i - 2]).toBeGreaterThan(4096)
  })

  it('keeps heads across a gap wider than the reach; pruning the pruned set changes nothing; one head is kept', () => {
    expect([...headsToKeep([10, 9000, 9100, 12000], 4096)].sort((a, b) => a - b)).toEqual([10, 9000, 12000])
    const lengths = [5, 17, 300, 4000, 4100, 8000, 8300, 20_000, 20_050]
    const kept = headsToKeep(lengths, 4096)
    expect(reachable(lengths, kept, 4096)).toBe(true)
    expect(headsToKeep([...kept], 4096)).toEqual(kept)
    expect([...headsToKeep([7, 7], 4096)]).toEqual([7])
    expect(headsToKeep([], 4096).size).toBe(0)
  })
})

import { describe, expect, it } from 'vitest'
import { DEFAULT_ATTACK_OPTIONS, runAttack } from '../../src/testbed/attack-harness.js'

/*
 * Issue #7 attacks at small scale through the real harness: daemons as separate processes on
 * loopback (needs the compiled CLI: `npx tsc -p .`), real LevelDB, real libp2p. Asserts the
 * direction of each effect, not timings.
 */
const small = { ...DEFAULT_ATTACK_OPTIONS, workloads: 3, machines: 1, progress: () => {} }

describe('attack harness', () => {
  it('inflate: the liar loses trust below the honest peers; honest choices do not follow the lie; no honest record lost', async () => {
    const r = await runAttack({ ...small, attack: 'inflate', peers: 4, byzantine: 2, replication: 2 })
    expect(r.honest).toBe(2)
    expect(r.trust.attackerWeight).toBeLessThan(r.trust.honestWeight)
    expect(r.trust.distrusted).toBeGreaterThan(0)
    expect(r.honestTop1.underAttack).toBeGreaterThanOrEqual(r.honestTop1.baseline)
    // without trust, two liars against two honest copies drag the plain median to the lie
    expect(r.honestTop1.undefended).toBeLessThan(r.honestTop1.underAttack)
    expect(r.honestRecordsLost).toBe(0)
  }, 240_000)

  it('equivocate: two bodies per seq are detected and the equivocator weighs nothing', async () => {
    const r = await runAttack({ ...small, attack: 'equivocate', peers: 3, byzantine: 1, publishRate: 100 })
    expect(r.trust.equivocators).toBeGreaterThan(0)
    expect(r.trust.attackerWeight).toBe(0)
    expect(r.honestTop1.underAttack).toBeGreaterThanOrEqual(r.honestTop1.baseline)
    expect(r.honestRecordsLost).toBe(0)
  }, 240_000)
})

import { describe, it, expect } from 'vitest'
import type { Engine, EngineSession, Method, ModelSpec } from '../../../src/engine/types.js'
import { createEngineSessions } from '../../../src/serving/sessions.js'

function fakeEngine (closed: string[]): Engine {
  return {
    async open (spec: ModelSpec, method: Method) {
      const id = `${spec.path}/${method.id}`
      return { tokenize: (text: string) => [text.length], close: async () => { closed.push(id) } } as unknown as EngineSession
    }
  } as unknown as Engine
}

describe('engine sessions', () => {
  it('keeps one session per model × method and closes the least recently used beyond maxSessions', async () => {
    const closed: string[] = []
    const engine = fakeEngine(closed)
    const sessions = createEngineSessions({ config: { dataDir: '/tmp', engine: {} as any }, engine: async () => engine, maxSessions: 2 })
    const spec = { path: 'm' } as ModelSpec
    const method = (id: string) => ({ id }) as Method
    const a = await sessions.open('m', spec, method('a'))
    await new Promise(resolve => setTimeout(resolve, 2))
    await sessions.open('m', spec, method('b'))
    await new Promise(resolve => setTimeout(resolve, 2))
    expect(await sessions.open('m', spec, method('a'))).toBe(a)
    await new Promise(resolve => setTimeout(resolve, 2))
    await sessions.open('m', spec, method('c'))
    await new Promise(resolve => setTimeout(resolve, 0))
    expect(closed).toEqual(['m/b'])
    expect(sessions.size()).toBe(2)
    expect(sessions.tokenizerFor('m')?.('abc')).toEqual([3])
    expect(sessions.tokenizerFor('other')).toBeUndefined()
    await sessions.closeAll()
    expect(closed.sort()).toEqual(['m/a', 'm/b', 'm/c'])
    expect(sessions.size()).toBe(0)
  })
})

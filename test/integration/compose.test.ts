import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadConfig } from '../../src/node/config.js'
import { packageRoot } from '../../src/util/paths.js'

// Docker cannot run on these machines: check that docker-compose.yml describes the same swarm
// as `swarmtune testbed` and that every SWARMTUNE_* setting in it is one the daemon accepts.
const root = packageRoot()
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true })
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')

interface Service { build?: string, image?: string, command?: string[], environment?: Record<string, string>, volumes?: string[], depends_on?: string[] }
const services = compose.services as Record<string, Service>
const peers = Object.keys(services).filter(s => s !== 'bootstrap')

describe('docker-compose.yml', () => {
  it('has a bootstrap service built from the Dockerfile and at least three peers on its image', () => {
    expect(services.bootstrap.build).toBe('.')
    expect(services.bootstrap.image).toBe('swarmtune:latest')
    expect(peers.length).toBeGreaterThanOrEqual(3)
    for (const p of peers) {
      expect(services[p].image).toBe(services.bootstrap.image)
      expect(services[p].depends_on).toContain('bootstrap')
    }
  })

  it('runs `swarmtune start` in every service (the image entry point is the CLI)', () => {
    expect(dockerfile).toMatch(/^FROM node:20-slim/m)
    expect(dockerfile).toMatch(/RUN npm ci/)
    expect(dockerfile).toMatch(/tsc -p \./)
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]/)
    for (const s of Object.values(services)) expect(s.command).toEqual(['start'])
  })

  it('gives every service its own named volume at its data dir', () => {
    const used = new Set<string>()
    for (const [name, s] of Object.entries(services)) {
      const data = s.volumes!.filter(v => v.split(':')[1] === s.environment?.SWARMTUNE_DATA_DIR)
      expect(data, name).toHaveLength(1)
      const [vol] = data[0].split(':')
      expect(Object.keys(compose.volumes)).toContain(vol)
      expect(used.has(vol)).toBe(false)
      used.add(vol)
    }
  })

  it('configures every service through SWARMTUNE_* variables the config loader accepts', () => {
    const bootstrapApiPort = Number(services.bootstrap.environment?.SWARMTUNE_API_PORT)
    for (const [name, s] of Object.entries(services)) {
      const env = s.environment ?? {}
      for (const k of Object.keys(env)) expect(k, name).toMatch(/^SWARMTUNE_/)
      const cfg = loadConfig({ env })
      expect(cfg.dataDir).toBe('/data')
      expect(cfg.net.listen).toEqual(['/ip4/0.0.0.0/tcp/4101'])
      // reachable from the other containers, which the default 127.0.0.1 would not be
      expect(cfg.api.host).toBe('0.0.0.0')
      if (name !== 'bootstrap') expect(env.SWARMTUNE_BOOTSTRAP_API).toBe(`http://bootstrap:${bootstrapApiPort}`)
    }
  })

  it('shares one API token file between the services (their APIs are bound beyond loopback: issue #18)', () => {
    const files = new Set(Object.values(services).map(s => s.environment?.SWARMTUNE_API_TOKEN_FILE))
    expect(files.size).toBe(1)
    const file = [...files][0]!
    const dir = file.slice(0, file.lastIndexOf('/'))
    for (const [name, s] of Object.entries(services)) {
      const shared = s.volumes!.filter(v => v.split(':')[1] === dir)
      expect(shared, name).toHaveLength(1)
      expect(Object.keys(compose.volumes)).toContain(shared[0].split(':')[0])
    }
  })
})

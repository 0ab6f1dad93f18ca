import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // libp2p 3 needs Promise.withResolvers, absent in Node 20.
    setupFiles: ['./src/util/polyfill.ts'],
    // the default data dir is per user: tests get a temp one (test/helpers/data-home.ts)
    globalSetup: ['./test/helpers/data-home.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests spawn real daemons; on a 2-core machine running files in parallel
    // only makes them time out.
    fileParallelism: false
  }
})

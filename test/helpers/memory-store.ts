/** moved to src/testbed/ so the in-process simulation (src/testbed/simulation.ts) can use it too */
export { createMemoryStore } from '../../src/testbed/memory-store.js'

import { join } from 'node:path'
import { packageRoot } from '../src/util/paths.js'
import { writeMiniScenario } from '../src/meta/aslib-fixture.js'

/**
 * Writes the synthetic mini ASlib scenario (src/meta/aslib-fixture.ts) to OUT_DIR.
 *   node dist/scripts/make-aslib-fixture.js [OUT_DIR]
 */
const out = process.argv[2] ?? join(packageRoot(), '.data', 'aslib-mini')
writeMiniScenario(out)
process.stdout.write(`wrote ${out}\n`)

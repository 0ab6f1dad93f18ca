import { readFileSync, writeFileSync } from 'node:fs'
import { TABLE_PRESETS, importTable, type TableMapping } from '../src/bench/table-import.js'

/**
 * A published CSV table → a JSONL history of record bodies for `swarmtune eval --history`.
 * usage: node dist/scripts/table-to-history.js PRESET|MAPPING.json IN.csv OUT.jsonl
 * Prints the count of bodies, repaired rows and errors by code (every bad row is reported).
 */
const [mapArg, input, output] = process.argv.slice(2)
if (mapArg == null || input == null || output == null) {
  process.stderr.write('usage: table-to-history PRESET|MAPPING.json IN.csv OUT.jsonl\n')
  process.exit(2)
}
const mapping: TableMapping = TABLE_PRESETS[mapArg] ?? JSON.parse(readFileSync(mapArg, 'utf8')) as TableMapping
const r = importTable(readFileSync(input, 'utf8'), mapping)
writeFileSync(output, r.bodies.map(b => JSON.stringify(b)).join('\n') + '\n')
const counts: Record<string, number> = {}
for (const e of r.errors) counts[e.code] = (counts[e.code] ?? 0) + 1
process.stdout.write(JSON.stringify({ bodies: r.bodies.length, repaired: r.repaired, errorCounts: counts, errors: r.errors.slice(0, 10) }) + '\n')

import { intFlag, parseFlags } from '../args.js'
import { synthBodies } from '../../records/synthetic.js'

const HELP = `usage: swarmtune synth --count N [--seed S]
Prints N schema-valid synthetic record bodies (source: synthetic) as JSON Lines, for load tests:
  swarmtune synth --count 1000 > bodies.jsonl && swarmtune import bodies.jsonl
`

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, { count: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  const count = intFlag(f.count, 'count', 10)
  const seed = intFlag(f.seed, 'seed', 1)
  // in chunks, so a large count neither builds one huge string nor ignores back-pressure
  for (let done = 0; done < count; done += 1000) {
    const chunk = synthBodies(Math.min(1000, count - done), seed + done).map(b => JSON.stringify(b)).join('\n') + '\n'
    if (!process.stdout.write(chunk)) await new Promise(resolve => process.stdout.once('drain', resolve))
  }
  return 0
}

#!/usr/bin/env node
import '../util/polyfill.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { setApiToken } from '../node/api-client.js'

/**
 * `swarmtune <command> [flags]`. Each command lives in src/cli/commands/<name>.ts and exports
 * `run(argv: string[]): Promise<number>` (the exit code). Loaded lazily so `swarmtune status`
 * never pays for loading llama.cpp or the forest.
 */
const COMMANDS: Record<string, string> = {
  start: 'run a node daemon',
  status: 'show a running node\'s status',
  history: 'list stored performance records',
  import: 'import record bodies or signed records (JSONL) or llama-bench output into a node or data dir',
  export: 'write every stored record, signed, as JSON Lines (backup, transfer)',
  synth: 'print synthetic record bodies for load tests',
  testbed: 'run a local multi-peer swarm on loopback',
  bench: 'benchmark acceleration methods on this machine',
  models: 'list the configured and built-in models, probe one (size, architecture, quantization), or add one to a config file',
  eval: 'cross-validate the meta-model on the local history',
  'eval-aslib': 'evaluate the selector on an ASlib scenario',
  recommend: 'ask a peer which method to use for a task',
  infer: 'run inference on a peer with the method it chooses'
}

function usage (): string {
  const width = Math.max(...Object.keys(COMMANDS).map(c => c.length))
  return [
    'usage: swarmtune <command> [flags]   (swarmtune <command> --help for its flags; swarmtune --version)',
    '  --token T  bearer token of a daemon bound beyond loopback (else $SWARMTUNE_API_TOKEN, else the api-token file in the data dir)',
    '',
    ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(width)}  ${d}`)
  ].join('\n')
}

/** --token TOKEN / --token=TOKEN, for every command that talks to a daemon: taken out here. */
function takeToken (argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--token' && i + 1 < argv.length) setApiToken(argv[++i])
    else if (argv[i].startsWith('--token=')) setApiToken(argv[i].slice('--token='.length))
    else out.push(argv[i])
  }
  return out
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = takeToken(argv)
  if (name === '--version' || name === '-v' || name === 'version') {
    const { readFileSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { packageRoot } = await import('../util/paths.js')
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
    process.stdout.write(`swarmtune ${pkg.version} (node ${process.version})\n`)
    return 0
  }
  if (name == null || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return name == null ? 1 : 0
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`swarmtune: unknown command "${name}"\n\n${usage()}\n`)
    return 2
  }
  const mod = await import(`./commands/${name}.js`) as { run: (argv: string[]) => Promise<number> }
  return await mod.run(rest)
}

main(process.argv.slice(2)).then(code => {
  process.exitCode = code
}, err => {
  process.stderr.write(`swarmtune: ${errorMessage(err)} [${errorCode(err)}]\n`)
  process.exitCode = 1
})

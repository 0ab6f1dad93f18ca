import { spawn } from 'node:child_process'
import { cliPath } from '../../src/util/paths.js'

export interface CliRun { status: number | null, stdout: string, stderr: string }

/** Run the built `swarmtune` CLI to its end, whatever its exit code (tests assert on it). */
export async function runCli (args: string[]): Promise<CliRun> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [cliPath(), ...args], { env: { ...process.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += String(d) })
    child.stderr.on('data', d => { stderr += String(d) })
    child.on('close', status => { resolve({ status, stdout, stderr }) })
  })
}

import { readFileSync } from 'node:fs'

/**
 * CPU time of this process's main thread in µs (Linux /proc; undefined elsewhere): with the
 * process's total (main thread and the verify pool's workers) it says where a record's cost goes,
 * and CPU per record stays readable on a loaded machine where records/s swing with the load.
 * Shared by bench-ingest and bench-sync.
 */
export function mainThreadCpuUs (): number | undefined {
  try {
    // fields after the command name: utime and stime are the 12th and 13th (clock ticks of 10 ms)
    const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) * 10_000
  } catch {
    return undefined
  }
}

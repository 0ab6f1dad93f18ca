import { SwarmtuneError } from './errors.js'

/**
 * Poll `check` until it returns a value other than undefined/false, or throw E_TIMEOUT at the
 * deadline (with the last error `check` threw, if any).
 */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      lastErr = err
    }
    if (Date.now() > deadline) {
      throw new SwarmtuneError('E_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${lastErr != null ? ` (last error: ${(lastErr as Error).message})` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

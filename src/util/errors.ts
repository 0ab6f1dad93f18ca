/**
 * Every error swarmtune raises on purpose carries a stable `code` (E_*), so that callers, network
 * validators, counters and the CLI can act on it without parsing messages.
 */
export class SwarmtuneError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

export function errorCode (err: unknown): string {
  if (err != null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code
  }
  return 'E_INTERNAL'
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

import { SwarmtuneError } from '../util/errors.js'

/**
 * Why a record was refused. Codes are stable: they key the rejection counters in `status` and
 * the Prometheus metrics.
 */
export const RecordErrorCode = {
  MALFORMED: 'E_MALFORMED',
  OVERSIZE: 'E_OVERSIZE',
  UNKNOWN_VERSION: 'E_UNKNOWN_VERSION',
  BAD_SIGNATURE: 'E_BAD_SIGNATURE',
  BAD_METRIC: 'E_BAD_METRIC',
  IMPLAUSIBLE: 'E_IMPLAUSIBLE',
  /** subnormal, negative zero, or non-zero below a plausibility floor (issue #18; gossip: Ignore) */
  IMPLAUSIBLE_SMALL: 'E_IMPLAUSIBLE_SMALL',
  FUTURE_TIMESTAMP: 'E_FUTURE_TIMESTAMP',
  MALFORMED_ID: 'E_MALFORMED_ID'
} as const
export type RecordErrorCode = typeof RecordErrorCode[keyof typeof RecordErrorCode]

export class RecordValidationError extends SwarmtuneError {
  /** dotted path of the offending field, when there is one */
  readonly path?: string
  constructor (code: RecordErrorCode, message: string, path?: string) {
    super(code, path != null ? `${path}: ${message}` : message)
    this.path = path
  }
}

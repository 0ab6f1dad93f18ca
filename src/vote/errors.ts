import { SwarmtuneError } from '../util/errors.js'

/** Why a vote was refused; codes key the rejection counters (status, metrics). */
export const VoteErrorCode = {
  MALFORMED: 'E_VOTE_MALFORMED',
  OVERSIZE: 'E_VOTE_OVERSIZE',
  UNKNOWN_VERSION: 'E_VOTE_VERSION',
  BAD_SIGNATURE: 'E_VOTE_SIGNATURE',
  BAD_ID: 'E_VOTE_ID',
  FUTURE_TIMESTAMP: 'E_VOTE_FUTURE',
  STALE: 'E_VOTE_STALE',
  BAD_SCORE: 'E_VOTE_SCORE'
} as const
export type VoteErrorCode = typeof VoteErrorCode[keyof typeof VoteErrorCode]

export class VoteValidationError extends SwarmtuneError {
  readonly path?: string
  constructor (code: VoteErrorCode, message: string, path?: string) {
    super(code, path != null ? `${path}: ${message}` : message)
    this.path = path
  }
}

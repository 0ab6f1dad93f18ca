/** Documented limits of a vote message (docs/VOTES.md). */
/** canonical body bytes; a gossip message of 64 classes x 16 methods is ~20 KiB */
export const MAX_VOTE_BYTES = 32 * 1024
export const MAX_VOTE_CLASSES = 64
export const MAX_RANKING = 32
export const MAX_CLASS_KEY = 200
/** a vote may be at most this far ahead of the receiver's clock */
export const MAX_VOTE_SKEW_MS = 10 * 60 * 1000
/** older votes no longer describe the author's current model: dropped (Ignore, not Reject) */
export const MAX_VOTE_AGE_MS = 24 * 3600 * 1000
/** evidence counts above this are not plausible for one class */
export const MAX_EVIDENCE = 1e9

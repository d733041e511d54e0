/** The most members a charter names. */
export const MAX_MEMBERS = 256

/**
 * How far a record's signed time (`iat`) may lie from its block's time, either way: signing,
 * mining and delivery take seconds. Beyond it the signer's clock, not the ledger's, would be
 * telling when the record was made.
 */
export const ANCHOR_SKEW_SECONDS = 60

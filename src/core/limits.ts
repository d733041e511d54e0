/** The most members a charter names. */
export const MAX_MEMBERS = 256

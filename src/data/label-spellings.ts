import { DatasetError } from '../core/errors.ts'

/** A label as a dataset file spells it, and where: `file:line`, or the file alone. */
export interface LabelSite {
  label: string
  where: string
}

/**
 * Refuses two spellings of one label that differ only by surrounding whitespace, invisible
 * format characters (a zero-width space, a byte-order mark) or Unicode normalisation form
 * ("Cardiology" and "Cardiology ", é as NFC and as NFD): each would silently become a class of
 * its own. Not merged: which one the file means is the user's to say.
 */
export function assertOneSpellingPerLabel (sites: Iterable<LabelSite>): void {
  const first = new Map<string, LabelSite>()
  for (const site of sites) {
    const key = site.label.replace(/\p{Cf}/gu, '').trim().normalize('NFC')
    const seen = first.get(key)
    if (seen === undefined) first.set(key, site)
    else if (seen.label !== site.label) {
      throw new DatasetError(`label ${shown(seen.label)} (${seen.where}) and ${shown(site.label)} (${site.where}) differ only in surrounding whitespace, invisible characters or Unicode normalisation: spell them alike, or each becomes a class of its own`)
    }
  }
}

/** A label quoted with every character outside printable ASCII escaped, so two spellings that look alike read apart. */
function shown (label: string): string {
  return JSON.stringify(label).replace(/[^\x20-\x7e]/g, c => `\\u${(c.charCodeAt(0)).toString(16).padStart(4, '0')}`)
}

/**
 * Abbreviations defined in running text, "long form ( ABBR )", found the simple way (in the
 * spirit of Schwartz & Hearst 2003): the long form is the nearest preceding run of words whose
 * first word starts with the abbreviation's first letter. Lets a tagger see that "AF" in a
 * later sentence stands for "atrial fibrillation", which no window feature of "AF" can tell.
 */
export function abbreviations (sentences: ReadonlyArray<readonly string[]>): Map<string, string> {
  const found = new Map<string, string>()
  for (const tokens of sentences) {
    for (let i = 1; i + 1 < tokens.length; i++) {
      const short = tokens[i] as string
      if (tokens[i - 1] !== '(' || tokens[i + 1] !== ')' || !/^[A-Za-z][A-Za-z0-9]{1,9}$/.test(short) || !/[A-Z]/.test(short)) continue
      const letters = short.replace(/[^A-Za-z]/g, '').toLowerCase()
      const before = tokens.slice(Math.max(0, i - 1 - Math.min(letters.length + 3, 2 * letters.length)), i - 1).map(w => w.toLowerCase())
      for (let k = before.length - 1; k >= 0; k--) {
        const word = before[k] as string
        if (word[0] === letters[0] && /[a-z]/.test(word)) { found.set(short, before.slice(k).join(' ')); break }
      }
    }
  }
  return found
}

import { ConfigError } from '../core/errors.ts'

/**
 * BERT's uncased WordPiece tokenizer, as Hugging Face `tokenizers` runs it from a
 * `tokenizer.json` with BertNormalizer + BertPreTokenizer + WordPiece: clean the text,
 * space out CJK ideographs, strip accents, lowercase, split on whitespace and punctuation,
 * then greedy longest-match subwords (`##` continuations), framed by [CLS] … [SEP].
 */
export interface WordPieceOptions {
  /** Token strings in id order: `vocab.txt`, one per line. */
  vocab: readonly string[]
  /** Longest encoding, [CLS] and [SEP] included; longer texts are truncated. @default 256 */
  maxLength?: number
  /** A word longer than this many code points becomes [UNK]. @default 100 */
  maxWordChars?: number
}

export interface WordPiece {
  /** Token ids of one text: [CLS], at most `maxLength - 2` pieces, [SEP]. */
  encode: (text: string) => number[]
  /** Id of [PAD], for batching. */
  padId: number
}

// Unicode classes as the Rust `tokenizers` crate tests them (char::is_whitespace,
// char::is_other, is_mark_nonspacing): \t \n \r are whitespace; any other C* (U+0085 too) is dropped.
const WHITESPACE = /\p{White_Space}/u
const CONTROL = /[^\t\n\r\P{C}]/u
const NONSPACING_MARK = /\p{Mn}/gu
// BERT's _is_punctuation: all ASCII non-alphanumerics (so `$`, `+`, `^` split too) and Unicode P*.
const PUNCTUATION = /[!-/:-@[-`{-~\p{P}]/u

/** Normalises and splits one text into words, before WordPiece. */
export function basicTokenize (text: string): string[] {
  let clean = ''
  for (const c of text) {
    if (c === '\0' || c === '\uFFFD' || CONTROL.test(c)) continue
    clean += WHITESPACE.test(c) ? ' ' : isCjk(c.codePointAt(0) as number) ? ` ${c} ` : c
  }
  // Per code point like `tokenizers`, so no context-dependent casing (Greek final sigma).
  const lowered = Array.from(clean.normalize('NFD').replace(NONSPACING_MARK, ''), c => c.toLowerCase()).join('')
  const words: string[] = []
  for (const chunk of lowered.split(' ')) {
    let word = ''
    for (const c of chunk) {
      if (!PUNCTUATION.test(c)) { word += c; continue }
      if (word !== '') words.push(word)
      words.push(c)
      word = ''
    }
    if (word !== '') words.push(word)
  }
  return words
}

export function wordPieceTokenizer (options: WordPieceOptions): WordPiece {
  const maxLength = options.maxLength ?? 256
  const maxWordChars = options.maxWordChars ?? 100
  const ids = new Map<string, number>()
  options.vocab.forEach((token, id) => { if (!ids.has(token)) ids.set(token, id) })
  const special = (token: string): number => {
    const id = ids.get(token)
    if (id === undefined) throw new ConfigError(`the WordPiece vocabulary has no ${token} token`)
    return id
  }
  const [cls, sep, unk, pad] = ['[CLS]', '[SEP]', '[UNK]', '[PAD]'].map(special) as [number, number, number, number]

  const pieces = (word: string): number[] => {
    const chars = Array.from(word) // code points, so an emoji is one character, not two
    if (chars.length > maxWordChars) return [unk]
    const out: number[] = []
    for (let start = 0; start < chars.length;) {
      let end = chars.length
      let id: number | undefined
      for (; end > start; end--) {
        id = ids.get((start > 0 ? '##' : '') + chars.slice(start, end).join(''))
        if (id !== undefined) break
      }
      // A word with any unmatched stretch is one [UNK], as in BERT, not a partial split.
      if (id === undefined) return [unk]
      out.push(id)
      start = end
    }
    return out
  }

  return {
    padId: pad,
    encode (text) {
      const body = basicTokenize(text).flatMap(pieces).slice(0, Math.max(0, maxLength - 2))
      return [cls, ...body, sep]
    }
  }
}

/** The CJK Unified Ideograph blocks BERT pads with spaces (not Hiragana, Katakana or Hangul). */
function isCjk (cp: number): boolean {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
    (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
    (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F)
}

/**
 * Entity-level micro precision, recall and F1 with seqeval's default (conlleval)
 * conventions: IOB2/IOBES tags; an I- that does not continue a chunk of its type starts
 * one; sentences are joined with an O between them; an entity counts only when its type,
 * start and end all match.
 */
export interface Entity {
  type: string
  start: number
  end: number
}

export interface EntityScores {
  precision: number
  recall: number
  f1: number
  /** Per entity type. */
  byType: Record<string, { precision: number, recall: number, f1: number, support: number }>
}

function split (tag: string): [string, string] {
  if (tag === 'O' || tag === '') return ['O', '']
  const dash = tag.indexOf('-')
  return dash < 0 ? [tag, ''] : [tag.slice(0, dash), tag.slice(dash + 1)]
}

/** The entities of one tag sequence (seqeval's get_entities). */
export function entitiesOf (tags: readonly string[]): Entity[] {
  const out: Entity[] = []
  let prefix = 'O'
  let type = ''
  let start = 0
  for (let i = 0; i <= tags.length; i++) {
    const [p, t] = i < tags.length ? split(tags[i] as string) : ['O', '']
    const ends = prefix === 'E' || prefix === 'S' || (prefix !== 'O' && (p === 'B' || p === 'S' || p === 'O')) || (prefix !== 'O' && type !== t)
    if (ends && prefix !== 'O') out.push({ type, start, end: i - 1 })
    const starts = p === 'B' || p === 'S' || ((prefix === 'E' || prefix === 'S' || prefix === 'O') && (p === 'I' || p === 'E')) || (p !== 'O' && type !== t)
    if (starts) start = i
    prefix = p
    type = t
  }
  return out
}

export function entityScores (gold: readonly string[][], predicted: readonly string[][]): EntityScores {
  if (gold.length !== predicted.length) throw new RangeError(`${gold.length} gold sentences but ${predicted.length} predicted`)
  const flatten = (sentences: readonly string[][]): string[] => sentences.flatMap(s => [...s, 'O'])
  const key = (e: Entity): string => `${e.type}\t${e.start}\t${e.end}`
  const g = entitiesOf(flatten(gold))
  const p = entitiesOf(flatten(predicted))
  const goldKeys = new Set(g.map(key))
  const hits = p.filter(e => goldKeys.has(key(e)))
  const prf = (tp: number, np: number, ng: number): { precision: number, recall: number, f1: number } => {
    const precision = np === 0 ? 0 : tp / np
    const recall = ng === 0 ? 0 : tp / ng
    return { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall) }
  }
  const types = [...new Set([...g, ...p].map(e => e.type))].sort()
  const byType = Object.fromEntries(types.map(t => [t, {
    ...prf(hits.filter(e => e.type === t).length, p.filter(e => e.type === t).length, g.filter(e => e.type === t).length),
    support: g.filter(e => e.type === t).length
  }]))
  return { ...prf(hits.length, p.length, g.length), byType }
}

import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { loadClassification, MAX_LABEL_CHARS, MAX_LABELS, MAX_TEXT_CHARS } from '../../src/data/classification.ts'
import { readConll } from '../../src/data/conll.ts'
import { MAX_DATASET_FILE_BYTES } from '../../src/data/dataset-file.ts'
import { densify, hashFeatures } from '../../src/data/features.ts'
import { readJsonl } from '../../src/data/jsonl.ts'
import { dirichlet, iid, MAX_ALPHA } from '../../src/data/partition.ts'
import { mixSeed, Rng } from '../../src/data/rng.ts'
import { fitTfidf, tokenize } from '../../src/data/tokenizer.ts'

describe('seeded randomness', () => {
  it('repeats for a seed and differs across seeds', () => {
    const draw = (seed: number): number[] => { const r = new Rng(seed); return Array.from({ length: 5 }, () => r.next()) }
    expect(draw(1)).toEqual(draw(1))
    expect(draw(1)).not.toEqual(draw(2))
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1))
  })

  it('draws Dirichlet vectors that sum to 1', () => {
    const p = new Rng(3).dirichlet(5, 0.3)
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10)
    expect(p.every(x => x >= 0)).toBe(true)
  })
})

describe('partitioners', () => {
  const labels = Array.from({ length: 600 }, (_, i) => i % 6)

  it('IID: disjoint, covering, near-equal, reproducible', () => {
    const parts = iid(600, 5, new Rng(1))
    expect(parts.map(p => p.length)).toEqual([120, 120, 120, 120, 120])
    expect(new Set(parts.flat()).size).toBe(600)
    expect(iid(600, 5, new Rng(1))).toEqual(parts)
  })

  it('Dirichlet: disjoint, covering, non-empty, reproducible, and more skewed for small α', () => {
    const skew = (alpha: number): number => {
      const parts = dirichlet(labels, 5, alpha, new Rng(9))
      expect(new Set(parts.flat()).size).toBe(600)
      expect(parts.every(p => p.length > 0)).toBe(true)
      expect(dirichlet(labels, 5, alpha, new Rng(9))).toEqual(parts)
      // Mean share of each part's most common label.
      return parts.reduce((s, p) => { const c = new Map<number, number>(); p.forEach(i => c.set(labels[i] as number, (c.get(labels[i] as number) ?? 0) + 1)); return s + Math.max(...c.values()) / p.length }, 0) / parts.length
    }
    expect(skew(0.1)).toBeGreaterThan(skew(100))
  })

  it('Dirichlet at MAX_ALPHA, the largest a config takes, splits each label evenly', () => {
    const parts = dirichlet(labels, 5, MAX_ALPHA, new Rng(9))
    expect(parts.map(p => [0, 1, 2, 3, 4, 5].map(label => p.filter(i => labels[i] === label).length))).toEqual(Array(5).fill(Array(6).fill(20)))
  })

  it('refuses more parts than examples (DatasetError)', () => {
    expect(() => iid(3, 5, new Rng(1))).toThrow(expect.objectContaining({ name: 'DatasetError' }))
  })
})

describe('loading and featurising', () => {
  it('names the file and line of a bad JSONL row, and refuses an empty file (DatasetError)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const file = join(dir, 'x.jsonl')
    const Row = z.object({ text: z.string(), label: z.string() })
    await writeFile(file, '{"text":"a","label":"x"}\n{"text":"b"}\n')
    await expect(readJsonl(file, Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('x.jsonl:2') })
    await writeFile(file, '{"text":"a","label":"x"}\nnot json\n')
    await expect(readJsonl(file, Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('x.jsonl:2') })
    await writeFile(file, '\n')
    await expect(readJsonl(file, Row)).rejects.toMatchObject({ name: 'DatasetError' })
  })

  it('loads a bring-your-own classification folder and refuses unknown labels', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    await writeFile(join(dir, 'train.jsonl'), '{"text":"fever and cough","label":"flu"}\n{"text":"broken arm","label":"injury"}\n')
    await writeFile(join(dir, 'test.jsonl'), '{"text":"sore arm","label":"injury"}\n')
    expect(await loadClassification(dir, { devFraction: 0 })).toEqual({ labels: ['flu', 'injury'], train: [{ text: 'fever and cough', label: 0 }, { text: 'broken arm', label: 1 }], dev: [], test: [{ text: 'sore arm', label: 1 }] })
    await writeFile(join(dir, 'dev.jsonl'), '{"id":"d1","text":"chills","label":"flu"}\n')
    expect((await loadClassification(dir)).dev).toEqual([{ text: 'chills', label: 0 }])
    await writeFile(join(dir, 'test.jsonl'), '{"text":"rash","label":"skin"}\n')
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('test.jsonl:1') })
  })

  it('carves a seeded dev split out of train when there is no dev.jsonl: disjoint, same every time', async () => {
    const ohsumed = new URL('../../data/ohsumed23', import.meta.url).pathname
    const a = await loadClassification(ohsumed)
    expect([a.labels.length, a.train.length, a.dev.length, a.test.length]).toEqual([23, 3021, 336, 4043])
    const texts = new Set(a.train.map(e => e.text))
    expect(a.dev.some(e => texts.has(e.text))).toBe(false)
    expect((await loadClassification(ohsumed)).dev).toEqual(a.dev)
    expect((await loadClassification(ohsumed, { seed: 1 })).dev).not.toEqual(a.dev)
    await expect(loadClassification(ohsumed, { devFraction: 1 })).rejects.toMatchObject({ name: 'ConfigError' })
  })

  it('hashes unigrams and bigrams into L2-normalised sparse vectors', () => {
    expect(tokenize("Patients' IL-2 levels, 5 mg.")).toEqual(['patients', 'il-2', 'levels', '5', 'mg'])
    const v = hashFeatures('fever fever cough', 64)
    expect(Math.hypot(...v.values)).toBeCloseTo(1, 6)
    expect(v.indices.length).toBeLessThanOrEqual(4)
    expect([...v.indices]).toEqual([...v.indices].sort((a, b) => a - b))
    const dense = densify([v], 64)
    expect(dense.length).toBe(64)
    expect(Math.hypot(...dense)).toBeCloseTo(1, 6)
  })
})

describe('vocabulary and TF-IDF', () => {
  const docs = ['Fever and cough.', 'fever, rash and fever', 'cough and cold', 'rash']

  it('keeps terms by document frequency, ties in code-unit order, within minCount and maxSize', () => {
    // document frequency: and 3, fever 2, cough 2, rash 2, cold 1
    expect(fitTfidf(docs, { minCount: 1 }).terms).toEqual(['and', 'cough', 'fever', 'rash', 'cold'])
    expect(fitTfidf(docs).terms).toEqual(['and', 'cough', 'fever', 'rash'])
    expect(fitTfidf(docs, { minCount: 1, maxSize: 2 }).terms).toEqual(['and', 'cough'])
    expect(fitTfidf([...docs].reverse()).terms).toEqual(fitTfidf(docs).terms)
    expect(() => fitTfidf([])).toThrow(expect.objectContaining({ name: 'DatasetError' }))
  })

  it('weighs (1 + ln tf) · idf with smoothed idf, L2-normalised, dropping unknown words (hand-computed)', () => {
    const tfidf = fitTfidf(docs)
    const idf = (df: number): number => Math.log(5 / (1 + df)) + 1
    expect([...tfidf.idf]).toEqual([idf(3), idf(2), idf(2), idf(2)].map(Math.fround))
    const v = tfidf.transform('Fever fever and unknown words')
    const fever = (1 + Math.log(2)) * Math.fround(idf(2))
    const and = Math.fround(idf(3))
    const norm = Math.hypot(fever, and)
    expect([...v.indices]).toEqual([0, 2])
    expect(v.values[0]).toBeCloseTo(and / norm, 6)
    expect(v.values[1]).toBeCloseTo(fever / norm, 6)
    expect(tfidf.transform('nothing known here')).toEqual({ indices: new Int32Array(0), values: new Float32Array(0) })
  })
})

describe('CoNLL BIO files', () => {
  it('reads sentences and names the line of wrong columns, bad tags or an empty file', async () => {
    const { readConll } = await import('../../src/data/conll.ts')
    const dir = await mkdtemp(join(tmpdir(), 'conclave-conll-'))
    const file = join(dir, 'x.conll')
    await writeFile(file, '-DOCSTART-\tO\n\nAspirin\tB-Chemical\ncauses\tO\nulcers\tB-Disease\n\nNo\tO\n')
    expect(await readConll(file)).toEqual([
      { tokens: ['Aspirin', 'causes', 'ulcers'], tags: ['B-Chemical', 'O', 'B-Disease'] },
      { tokens: ['No'], tags: ['O'] }
    ])
    for (const [content, line] of [['a\tO\nb\n', 2], ['a\tO\nb\tX-Chem\n', 2], ['a\tO\n\nb\tB-\n', 3], ['a\tB-Chemical \n', 1], ['a\tB-Caf\u00e9\n', 1]] as const) {
      await writeFile(file, content)
      await expect(readConll(file)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining(`x.conll:${line}`) })
    }
    await writeFile(file, '\n\n')
    await expect(readConll(file)).rejects.toMatchObject({ name: 'DatasetError' })
  })

  it('reads the bundled BC5CDR splits with the README\'s counts', async () => {
    const { readConll } = await import('../../src/data/conll.ts')
    const train = await readConll(new URL('../../data/bc5cdr/train.conll', import.meta.url).pathname)
    expect(train.length).toBe(4560)
    expect(train.reduce((n, s) => n + s.tokens.length, 0)).toBe(118170)
  })
})

describe('dataset files: links, FIFOs, size and line caps', () => {
  const Row = z.object({ text: z.string(), label: z.string() })
  const ok = '{"text":"a","label":"x"}\n{"text":"b","label":"y"}\n'

  it('refuses a FIFO, also behind a link, instead of hanging (DatasetError naming the file); follows a link to a plain file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    execFileSync('mkfifo', [join(dir, 'fifo')])
    await symlink(join(dir, 'fifo'), join(dir, 'linked.jsonl'))
    for (const name of ['fifo', 'linked.jsonl']) {
      await expect(readJsonl(join(dir, name), Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining(join(dir, name)) })
    }
    await writeFile(join(dir, 'a.conll'), 'a\tO\n')
    execFileSync('mkfifo', [join(dir, 'b.conll')])
    await expect(readConll(join(dir, 'b.conll'))).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('b.conll') })
    await writeFile(join(dir, 'real.jsonl'), ok)
    await symlink(join(dir, 'real.jsonl'), join(dir, 'train.jsonl'))
    expect(await readJsonl(join(dir, 'train.jsonl'), Row)).toHaveLength(2)
    await expect(readJsonl(join(dir, 'missing.jsonl'), Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('missing.jsonl') })
  }, 3000)

  it('refuses a file over the size cap and a line over the line cap, naming the file, the line and the cap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const file = join(dir, 'x.jsonl')
    await writeFile(file, ok.repeat(10))
    await expect(readJsonl(file, Row, { maxBytes: 100 })).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/x\.jsonl is too large.* 100 bytes/) })
    expect(await readJsonl(file, Row, { maxBytes: 1000 })).toHaveLength(20)
    await writeFile(file, ok + JSON.stringify({ text: 'a'.repeat(100), label: 'x' }) + '\n')
    await expect(readJsonl(file, Row, { maxLineChars: 50 })).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/x\.jsonl:3: line is too long.* 50 /) })
    const conll = join(dir, 'x.conll')
    await writeFile(conll, 'a\tO\n'.repeat(50) + 'b'.repeat(60) + '\tO\n')
    await expect(readConll(conll, { maxBytes: 100 })).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('x.conll is too large') })
    await expect(readConll(conll, { maxLineChars: 50 })).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('x.conll:51: line is too long') })
  })

  it('caps a file well above every bundled dataset file', async () => {
    const root = new URL('../../data/', import.meta.url).pathname
    let largest = 0
    for (const set of await readdir(root, { withFileTypes: true })) {
      if (!set.isDirectory()) continue
      for (const f of await readdir(join(root, set.name))) largest = Math.max(largest, (await stat(join(root, set.name, f))).size)
    }
    expect(largest).toBeGreaterThan(1_000_000)
    expect(MAX_DATASET_FILE_BYTES).toBeGreaterThan(20 * largest)
  })

  it('refuses invalid UTF-8 instead of replacing it with U+FFFD, naming the file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const file = join(dir, 'x.jsonl')
    await writeFile(file, Buffer.concat([Buffer.from(ok + '{"text":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('","label":"x"}\n')]))
    await expect(readJsonl(file, Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/x\.jsonl:3: not valid UTF-8/) })
    const conll = join(dir, 'x.conll')
    await writeFile(conll, Buffer.concat([Buffer.from('a\tO\n\nb'), Buffer.from([0xc3]), Buffer.from('\tO\n')]))
    await expect(readConll(conll)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/x\.conll:3: not valid UTF-8/) })
    await writeFile(file, '{"text":"caf\u00e9 \u{1F600}","label":"x"}\n')
    expect(await readJsonl(file, Row)).toEqual([{ text: 'caf\u00e9 \u{1F600}', label: 'x' }])
  })

  it('skips a UTF-8 byte order mark at the start of a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    await writeFile(join(dir, 'x.jsonl'), '\uFEFF' + ok)
    expect(await readJsonl(join(dir, 'x.jsonl'), Row)).toEqual([{ text: 'a', label: 'x' }, { text: 'b', label: 'y' }])
    await writeFile(join(dir, 'x.conll'), '\uFEFFEU\tB-ORG\r\nrejects\tO\r\n')
    expect(await readConll(join(dir, 'x.conll'))).toEqual([{ tokens: ['EU', 'rejects'], tags: ['B-ORG', 'O'] }])
    await writeFile(join(dir, 'x.jsonl'), ok + '\uFEFF' + ok)
    await expect(readJsonl(join(dir, 'x.jsonl'), Row)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('x.jsonl:3') })
  })

  it('names the file line, not the row index, of an unknown label', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    await writeFile(join(dir, 'train.jsonl'), ok)
    await writeFile(join(dir, 'test.jsonl'), '\n\n\n{"text":"a","label":"zz"}\n')
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('test.jsonl:4: unknown label "zz"') })
    await writeFile(join(dir, 'test.jsonl'), ok)
    await writeFile(join(dir, 'dev.jsonl'), '{"text":"a","label":"x"}\n\n{"text":"a","label":"zz"}\n')
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('dev.jsonl:3: unknown label "zz"') })
  })

  it('treats only a missing labels.json as absent: a folder, a FIFO or an unreadable one is a DatasetError naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    await writeFile(join(dir, 'train.jsonl'), ok)
    await writeFile(join(dir, 'test.jsonl'), ok)
    expect((await loadClassification(dir)).labels).toEqual(['x', 'y'])
    const labels = join(dir, 'labels.json')
    await mkdir(labels)
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining(labels) })
    await rm(labels, { recursive: true })
    execFileSync('mkfifo', [labels])
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining(labels) })
    await rm(labels)
    await writeFile(labels, '\uFEFF["y","x"]')
    expect((await loadClassification(dir)).labels).toEqual(['y', 'x'])
    if (process.getuid?.() !== 0) { // root reads anything
      await chmod(labels, 0)
      await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining(labels) })
    }
  }, 3000)

  it('caps a text\'s and a label\'s length and the number of distinct labels, naming the file (and line)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const row = (text: string, label: string): string => JSON.stringify({ text, label }) + '\n'
    await writeFile(join(dir, 'test.jsonl'), ok)
    await writeFile(join(dir, 'train.jsonl'), ok + row('t'.repeat(MAX_TEXT_CHARS + 1), 'x'))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/train\.jsonl:3: text .*100000/) })
    await writeFile(join(dir, 'train.jsonl'), ok + row('t'.repeat(MAX_TEXT_CHARS), 'L'.repeat(MAX_LABEL_CHARS + 1)))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/train\.jsonl:3: label .*256/) })
    await writeFile(join(dir, 'train.jsonl'), ok + Array.from({ length: MAX_LABELS - 1 }, (_, i) => row('t', `l${i}`)).join(''))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/train\.jsonl has 1001 distinct labels.* 1000/) })
    await writeFile(join(dir, 'train.jsonl'), ok + Array.from({ length: MAX_LABELS - 2 }, (_, i) => row('t', `l${i}`)).join(''))
    expect((await loadClassification(dir)).labels).toHaveLength(MAX_LABELS)
    await writeFile(join(dir, 'labels.json'), JSON.stringify(['x', 'y', ...Array.from({ length: MAX_LABELS - 1 }, (_, i) => `l${i}`)]))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/labels\.json has 1001 distinct labels/) })
    await writeFile(join(dir, 'labels.json'), JSON.stringify(['x', 'y', 'L'.repeat(MAX_LABEL_CHARS + 1)]))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringContaining('labels.json') })
    // Found red-teaming the cap: it counted distinct labels, the model has one output per entry,
    // so 200,000 entries repeating x and y passed (a last layer of 8192 × 200,000 weights).
    await writeFile(join(dir, 'train.jsonl'), ok)
    await writeFile(join(dir, 'labels.json'), JSON.stringify(Array.from({ length: 200_000 }, (_, i) => i % 2 === 0 ? 'x' : 'y')))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/labels\.json names "x" twice/) })
    await writeFile(join(dir, 'labels.json'), JSON.stringify(['x', 'y', 'x']))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/labels\.json names "x" twice/) })
  })

  it('refuses labels that differ only by surrounding whitespace, invisible characters or Unicode normalisation, naming both spellings and where each is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const row = (text: string, label: string): string => JSON.stringify({ text, label }) + '\n'
    await writeFile(join(dir, 'test.jsonl'), row('t', 'Cardiology'))
    // Each would silently have become a class of its own, its examples split between two outputs.
    await writeFile(join(dir, 'train.jsonl'), row('a', 'Cardiology') + row('b', 'Oncology') + row('c', 'Cardiology '))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/"Cardiology" \(.*train\.jsonl:1\).*"Cardiology " \(.*train\.jsonl:3\)/) })
    await writeFile(join(dir, 'train.jsonl'), row('a', 'Caf\u00e9') + row('b', 'Cafe\u0301'))
    await writeFile(join(dir, 'test.jsonl'), row('t', 'Caf\u00e9'))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/"Caf\\u00e9" \(.*train\.jsonl:1\).*"Cafe\\u0301" \(.*train\.jsonl:2\)/) })
    // Across files too: test's spelling against labels.json's.
    await writeFile(join(dir, 'train.jsonl'), row('a', 'Caf\u00e9') + row('b', 'x'))
    await writeFile(join(dir, 'test.jsonl'), row('t', 'x') + row('u', '\u00a0x'))
    await writeFile(join(dir, 'labels.json'), JSON.stringify(['Caf\u00e9', 'x']))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/"x" \(.*labels\.json\).*"\\u00a0x" \(.*test\.jsonl:2\)/) })
    // An invisible character (a zero-width space) is no new class either.
    await writeFile(join(dir, 'test.jsonl'), row('t', 'x\u200b'))
    await expect(loadClassification(dir)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/"x" \(.*labels\.json\).*"x\\u200b" \(.*test\.jsonl:1\)/) })
    await writeFile(join(dir, 'test.jsonl'), row('t', 'x'))
    expect((await loadClassification(dir)).labels).toEqual(['Caf\u00e9', 'x'])
  })

  it('loads the bundled OHSUMED-23, whose labels are spelled one way each', async () => {
    const data = await loadClassification(new URL('../../data/ohsumed23', import.meta.url).pathname)
    expect(data.labels).toHaveLength(23)
  })

  it('refuses a CoNLL line whose columns differ in number from the file\'s first token line, naming file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    const file = join(dir, 'x.conll')
    await writeFile(file, '-DOCSTART-\tO\n\nEU\tNNP\tB-ORG\nrejects\tO\n\nx\tO\n')
    await expect(readConll(file)).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/x\.conll:4: 2 columns, but line 3 has 3/) })
    await writeFile(file, 'EU\tNNP\tB-ORG\nrejects\tVBZ\tO\n\nx\tNN\tO\n')
    expect(await readConll(file)).toEqual([{ tokens: ['EU', 'rejects'], tags: ['B-ORG', 'O'] }, { tokens: ['x'], tags: ['O'] }])
  })

  it('warns, without failing, how many test examples also appear in train', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-data-'))
    await writeFile(join(dir, 'train.jsonl'), ok)
    await writeFile(join(dir, 'test.jsonl'), ok + '{"text":"c","label":"x"}\n')
    const warnings: Array<[string, object | undefined]> = []
    const logger = { info () {}, warn (message: string, fields?: object) { warnings.push([message, fields]) } }
    expect((await loadClassification(dir, { logger })).test).toHaveLength(3)
    expect(warnings).toEqual([[expect.stringContaining('test.jsonl'), { file: join(dir, 'test.jsonl'), alsoInTrain: 2, examples: 3 }]])
    await writeFile(join(dir, 'test.jsonl'), '{"text":"c","label":"x"}\n')
    warnings.length = 0
    await loadClassification(dir, { logger })
    expect(warnings).toEqual([])
  })
})

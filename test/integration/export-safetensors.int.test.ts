import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.ts'
import { decodeSafetensors } from '../../src/ml/safetensors.ts'

const run = promisify(execFile)

/** Loads a safetensors file with Python's `safetensors` package, as a user of an export would. */
const LOAD = `
import hashlib, json, sys
from safetensors.numpy import load_file
path = sys.argv[1]
tensors = load_file(path)
print(json.dumps({
  "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
  "tensors": {name: {"shape": list(t.shape), "dtype": str(t.dtype), "sum": float(t.astype("float64").sum())} for name, t in tensors.items()},
}))
`

/** `conclave export`'s model.safetensors opened by PyPI's `safetensors` (scripts/models/safetensors.sh). */
describe('an exported model in Python', () => {
  let python: string

  beforeAll(async () => {
    const { stdout } = await run('scripts/models/safetensors.sh', [], { timeout: 600_000 })
    python = stdout.trim().split('\n').at(-1) as string
  }, 900_000)

  it('loads with safetensors, and the file hashes to the run\'s model hash', async () => {
    const data = await mkdtemp(join(tmpdir(), 'conclave-export-py-'))
    const rows = (n: number): string => Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${['fever cough virus', 'bone fracture cast', 'skin rash itch'][i % 3]} patient ${i}`, label: ['flu', 'bone', 'skin'][i % 3] })).join('\n') + '\n'
    await writeFile(join(data, 'train.jsonl'), rows(60))
    await writeFile(join(data, 'test.jsonl'), rows(15))
    const dir = join(data, 'run')
    const out = join(data, 'model')
    expect(await main(['run', '--agents', '2', '--rounds', '1', '--quorum', '1', '--data', data, '--out', dir])).toBe(0)
    expect(await main(['export', dir, '--out', out])).toBe(0)
    const modelHash = (JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { modelHash: string }).modelHash

    const { stdout } = await run(python, ['-c', LOAD, join(out, 'model.safetensors')])
    const loaded = JSON.parse(stdout) as { sha256: string, tensors: Record<string, { shape: number[], dtype: string, sum: number }> }
    expect(loaded.sha256).toBe(modelHash)
    const ours = decodeSafetensors(await readFile(join(out, 'model.safetensors')))
    expect(loaded.tensors).toEqual(Object.fromEntries([...ours].map(([name, t]) => [name, { shape: t.shape, dtype: 'float32', sum: expect.closeTo(t.data.reduce((a, b) => a + b, 0), 3) }])))
    // The vocabulary the export carries is the kernel's input side.
    const predictor = JSON.parse(await readFile(join(out, 'predictor.json'), 'utf8')) as { predictor: { featurizer: { terms: string[] } } }
    expect(loaded.tensors['dense0.kernel']?.shape[0]).toBe(predictor.predictor.featurizer.terms.length)
  })
})

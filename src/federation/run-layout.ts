import { basename, dirname } from 'node:path/posix'

/** The files a run writes under its folders, as `/`-separated paths from the run directory; its members are agent-1, agent-2… (config.ts memberName). */
const FILES = [
  /^ledger\/tangle\.jsonl$/,
  // blockstore-fs: blocks/<its last two characters>/B<base32 multihash>.data (checked below); helia's pins beside it (storage/helia-verify.ts).
  /^store\/blocks\/[A-Z2-7]{2}\/B[A-Z2-7]+\.data$/,
  /^store\/datastore\/(version\.data|pinned-blocks\.log)$/,
  /^store\/datastore\/(pin|pinned-block)\/[a-z0-9]+\.data$/,
  /^keys\/agent-[1-9]\d*\.key\.json$/,
  /^agents\/agent-[1-9]\d*\/(memory\.json|memory\.json\.log|paused\.json|teacher-index\.json|residual-\d+\.safetensors)$/
]

const FOLDERS = [/^store\/blocks(\/[A-Z2-7]{2})?$/, /^store\/datastore(\/(pin|pinned-block))?$/, /^agents\/agent-[1-9]\d*$/]

/**
 * Whether a run writes `path` (a file, or a folder when `folder`): `--force` removes a
 * run's folders only when everything in them is, so a file someone put there is never
 * removed. A run killed mid-write leaves its half-written copy beside the file: `x.tmp`
 * (core/files.ts) or `.x.tmp` (the stores' atomic writes).
 */
export function runWrites (path: string, folder: boolean): boolean {
  if (folder) return FOLDERS.some(shape => shape.test(path))
  const name = basename(path)
  const written = /^\.(.+)\.tmp$/.exec(name)?.[1] ?? /^(.+)\.tmp$/.exec(name)?.[1] ?? name
  const full = `${dirname(path)}/${written}`
  return FILES.some(shape => shape.test(full)) && inItsShard(full)
}

/** A block sits in the folder named by the last two characters of its name (blockstore-fs's NextToLast sharding). */
function inItsShard (path: string): boolean {
  const block = /^store\/blocks\/([A-Z2-7]{2})\/(B[A-Z2-7]+)\.data$/.exec(path)
  return block === null || block[2]?.slice(-2) === block[1]
}

import { mkdtemp, open, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Runs `body` with every FileHandle's sync and datasync first calling `seen` with the handle. */
export async function withSyncs<T> (seen: (handle: FileHandle) => void, body: () => Promise<T>): Promise<T> {
  const probe = await open(join(await mkdtemp(join(tmpdir(), 'conclave-probe-')), 'probe'), 'w')
  const proto = Object.getPrototypeOf(probe) as FileHandle
  await probe.close()
  const { sync, datasync } = proto
  proto.sync = async function (this: FileHandle) { seen(this); await sync.call(this) }
  proto.datasync = async function (this: FileHandle) { seen(this); await datasync.call(this) }
  try {
    return await body()
  } finally {
    Object.assign(proto, { sync, datasync })
  }
}

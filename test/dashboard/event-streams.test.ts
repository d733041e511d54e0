import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EventStreams, MAX_BEHIND_BYTES } from '../../src/dashboard/event-streams.ts'

/** A page that never reads: its first write never completes, so everything after it stays buffered. */
const stalled = (): Writable => new Writable({ write () {} })

/** A page that reads everything it is sent. */
function reading (): { sink: Writable, got: string[] } {
  const got: string[] = []
  return { sink: new Writable({ decodeStrings: false, write (chunk: string, _encoding, done) { got.push(chunk); done() } }), got }
}

const EVENT = `id: 7\nevent: record\ndata: ${JSON.stringify({ seq: 7, block: 'b'.repeat(64), type: 'vote', round: 1 })}\n\n`
/** Events that fit in MAX_BEHIND_BYTES: one more passes it. */
const FITS = Math.floor(MAX_BEHIND_BYTES / EVENT.length)

// Found red-teaming: a page that stopped reading was never dropped, and held every record sent after it stalled.
describe('live event streams: a page that stops reading', () => {
  it('is dropped once more than MAX_BEHIND_BYTES are waiting for it, while a reading page keeps its stream', () => {
    const streams = new EventStreams()
    const stuck = stalled()
    const page = reading()
    streams.add(stuck, [])
    streams.add(page.sink, [])
    for (let i = 0; i < FITS; i++) streams.send(EVENT)
    expect({ stuck: stuck.destroyed, open: streams.size }).toEqual({ stuck: false, open: 2 })
    streams.send(EVENT)
    expect({ stuck: stuck.destroyed, page: page.sink.destroyed, open: streams.size }).toEqual({ stuck: true, page: false, open: 1 })
    streams.send(EVENT)
    expect(page.got).toEqual(Array(FITS + 2).fill(EVENT))
    streams.endAll()
  })

  it('is first sent all it missed, however much (an EventSource catching up), and dropped only once it falls MAX_BEHIND_BYTES further behind', () => {
    const streams = new EventStreams()
    const stuck = stalled()
    streams.add(stuck, Array(2 * FITS).fill(EVENT))
    for (let i = 0; i < FITS; i++) streams.send(EVENT)
    expect({ stuck: stuck.destroyed, open: streams.size }).toEqual({ stuck: false, open: 1 })
    streams.send(EVENT)
    expect({ stuck: stuck.destroyed, open: streams.size }).toEqual({ stuck: true, open: 0 })
  })
})

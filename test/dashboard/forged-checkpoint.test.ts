import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import type { RunView } from '../../src/federation/run-view.ts'
import { forgedCheckpointRun } from '../federation/forged-checkpoint-run.ts'

// Found red-teaming: the dashboard applied records without deriving merges, so the recorder's
// made-up model was shown as round 1's, and the real checkpoint after it as refused, while every
// member and the audit refuse the made-up one.
describe('the dashboard and a recorder\'s checkpoint that names a model of its own making', () => {
  let run: { dir: string, model: string, made: string }
  let dashboard: Dashboard | undefined
  beforeAll(async () => { run = await forgedCheckpointRun() }, 120_000)
  afterEach(async () => { await dashboard?.close(); dashboard = undefined })

  const state = async (dir: string): Promise<RunView> => {
    dashboard = await startDashboard({ dir, port: 0 })
    return await (await fetch(new URL('/api/state', dashboard.url))).json() as RunView
  }

  it('shows the model the accepted updates merge to, and the made-up one refused, as the audit does', async () => {
    const view = await state(run.dir)
    expect(view.checkpoints).toEqual({ rederived: true, why: null })
    expect(view.rounds.map(r => r.model)).toEqual([run.model])
    expect(view.refused.map(r => ({ type: r.type, code: r.code }))).toEqual([{ type: 'checkpoint', code: 'ERR_DERIVATION_MISMATCH' }])
  })

  it('without the run\'s store, says the models are as the recorders signed them', async () => {
    const dir = `${run.dir}-ledger-only`
    await cp(run.dir, dir, { recursive: true })
    await rm(join(dir, 'store'), { recursive: true })
    const view = await state(dir)
    expect(view.checkpoints).toEqual({ rederived: false, why: 'no content store to derive them from' })
    expect(view.rounds.map(r => r.model)).toEqual([run.made])
  })
})

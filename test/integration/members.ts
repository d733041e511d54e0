import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MemberReport } from '../../src/federation/member.ts'
import { loadOrCreateKeystore, peekRecord } from '../../src/identity/index.ts'
import { newMatrixUser, synapseUrl } from './synapse.ts'

const kuboUrl = `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}`

export interface Member { child: ChildProcess, output: string[], exited: Promise<number | null> }

/** `conclave agent --config FILE` as its own OS process, its output kept for failures. */
export function start (config: string, flags: string[] = []): Member {
  const child = spawn('node_modules/.bin/node', ['bin/conclave.js', 'agent', '--config', config, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  return { child, output, exited: new Promise(resolve => child.on('exit', code => { resolve(code) })) }
}

export async function until<T> (what: string, probe: () => Promise<T | undefined>, members: Member[], seconds = 300): Promise<T> {
  for (let i = 0; i < seconds * 2; i++) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    // A member that failed ends the wait; one that finished (exit 0) may be waiting for the others' work.
    if (members.some(m => m.child.exitCode !== null && m.child.exitCode !== 0) || members.every(m => m.child.exitCode !== null)) break
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  throw new Error(`${what}: gave up.\n${members.map((m, i) => `--- agent-${i + 1} (exit ${m.child.exitCode}):\n${m.output.join('').slice(-3000)}`).join('\n')}`)
}

/**
 * Three members' config files (keys, Matrix accounts, directories) under `root`: by default for
 * 2 rounds with a 300 s window, agent-3 hostile (a sign flip), all on the suite's kubo daemon
 * (`kubo`: each member's own node's URL).
 * Each lists every member's account (its own with its token), so whoever creates the
 * invite-only room invites the others and the researchers.
 */
export async function threeMembers (root: string, federation: string, driver: 'agents' | 'autopilot', options: { researchers?: string[], rounds?: number, windowSeconds?: number, hostile?: boolean, kubo?: readonly string[] } = {}): Promise<string[]> {
  const { researchers = [], rounds = 2, windowSeconds = 300, hostile = true, kubo = [kuboUrl, kuboUrl, kuboUrl] } = options
  const keys = [1, 2, 3].map(i => join(root, `agent-${i}.key.json`))
  const members = await Promise.all(keys.map(async k => (await loadOrCreateKeystore(k)).did))
  const accounts = await Promise.all([1, 2, 3].map(async i => newMatrixUser(`member${i}`)))
  const configs: string[] = []
  for (const [i, key] of keys.entries()) {
    const config = {
      member: i + 1, members, key, dir: join(root, `agent-${i + 1}`), joinSeconds: 120,
      federation, rounds, seed: 5, quorum: 'majority', windowSeconds,
      task: { kind: 'classify', trainLimit: 600, testLimit: 200 },
      attacks: hostile ? [{ kind: 'sign-flip', agent: 3, scale: 5 }] : [],
      store: { kind: 'kubo', url: kubo[i] },
      ledger: { kind: 'replica', difficulty: 4 },
      bus: { kind: 'matrix', baseUrl: synapseUrl, accounts: accounts.map((a, j) => j === i ? a : { userId: a.userId }) },
      researchers,
      agent: { driver, llm: 'policy' }
    }
    configs.push(join(root, `agent-${i + 1}.json`))
    await writeFile(configs.at(-1) as string, JSON.stringify(config, null, 2))
  }
  return configs
}

export const reportsOf = async (root: string): Promise<MemberReport[]> => Promise.all([1, 2, 3].map(async i => JSON.parse(await readFile(join(root, `agent-${i}`, 'report.json'), 'utf8')) as MemberReport))

export interface Anchored { id: string, issuer: string | null, type?: string, round?: number, proposal?: string }

/** The records in member `n`'s copy of the ledger (`<dir>/ledger/replica.jsonl`, after its header line). */
export async function copyOf (root: string, n: number): Promise<Anchored[]> {
  const lines = (await readFile(join(root, `agent-${n}`, 'ledger', 'replica.jsonl'), 'utf8')).split('\n').slice(1).filter(line => line.endsWith('}'))
  return lines.map(line => {
    const block = JSON.parse(line) as { id: string, record: string }
    const { issuer, record } = peekRecord(block.record)
    return { id: block.id, issuer, type: record?.type, round: record !== null && 'round' in record ? record.round : undefined, proposal: record?.type === 'vote' ? record.proposal : undefined }
  })
}

export const dids = async (configs: string[]): Promise<string[]> => (JSON.parse(await readFile(configs[0] as string, 'utf8')) as { members: string[] }).members

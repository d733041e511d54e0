import { z } from 'zod'
import { BackendUnavailableError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'
import type { RunConfig } from './config.ts'

/** A remote service a run depends on, and how to tell that it is up. */
export interface Service {
  /** What people call it. */
  name: string
  /** An endpoint that answers 2xx, without credentials, when the service is up and is what the config says. */
  url: URL
  method: 'GET' | 'POST'
  /** A JSON-RPC method posted to `url`, whose answer must carry a `result` (a node answers its errors with HTTP 200 too). */
  rpc?: string
  /** The command that starts a local one. */
  fix: string
}

const RpcAnswer = z.object({ jsonrpc: z.literal('2.0'), result: z.unknown().refine(r => r !== undefined) })

export interface ProbeOptions extends AbortOptions {
  /** How long one probe waits for an answer, in ms. @default 5000 (probes run at once: a run fails within seconds) */
  timeoutMs?: number
}

/** The remote services `config` names, each at its version endpoint; none for the embedded engines. */
export function servicesOf (config: RunConfig): Service[] {
  const services: Service[] = []
  if (config.bus.kind === 'matrix') services.push(at('Matrix homeserver', config.bus.baseUrl, '/_matrix/client/versions', 'GET', 'scripts/services/synapse.sh up'))
  if (config.store.kind === 'kubo') services.push(at('kubo', config.store.url, '/api/v0/version', 'POST', 'scripts/services/kubo.sh up'))
  // A teacher is asked only by a task learned by distillation (qa); elsewhere it is never called.
  if (config.teacher.kind === 'ollama' && config.task.kind === 'qa') services.push(at('Ollama', config.teacher.url, '/api/version', 'GET', 'scripts/services/ollama.sh up'))
  // The ledger's own first call: every anchor asks for the reference gas price.
  if (config.ledger.kind === 'iota') services.push({ ...at('IOTA node', config.ledger.url, '', 'POST', 'iota start --force-regenesis --with-faucet'), rpc: 'iotax_getReferenceGasPrice' })
  return services
}

/**
 * Probes every remote service the config names, all at once, before a run touches
 * anything: one that refuses, stays silent past the timeout or answers as something else
 * fails the run with a BackendUnavailableError naming its URL and the command that starts it.
 */
export async function preflight (config: RunConfig, options: ProbeOptions = {}): Promise<void> {
  const results = await Promise.allSettled(servicesOf(config).map(async s => probe(s, options)))
  const failures = results.flatMap(r => r.status === 'rejected' ? [r.reason as Error] : [])
  if (failures.length === 1) throw failures[0]
  if (failures.length > 1) throw new BackendUnavailableError(failures.map(f => f.message).join('\n'), { cause: failures })
}

export async function probe (service: Service, options: ProbeOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal === undefined ? [] : [options.signal])])
  let response: Response
  try {
    const call = service.rpc === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: service.rpc, params: [] }) }
    response = await fetch(service.url, { method: service.method, signal, ...call })
  } catch (err) {
    options.signal?.throwIfAborted()
    const why = (err as Error).name === 'TimeoutError' ? `did not answer within ${timeoutMs / 1000} s` : `cannot be reached (${reason(err)})`
    throw new BackendUnavailableError(`${service.name} at ${service.url.href} ${why}: \`${service.fix}\` starts a local one`, { cause: err })
  }
  const answered = service.rpc === undefined || !response.ok ? true : RpcAnswer.safeParse(await response.json().catch(() => undefined)).success
  if (!response.bodyUsed) await response.body?.cancel()
  if (!response.ok || !answered) {
    const what = response.ok ? `${service.rpc} without a result` : `HTTP ${response.status}`
    throw new BackendUnavailableError(`${service.url.href} answered ${what}: not a ${service.name}, or not the URL it serves at (\`${service.fix}\` starts a local one)`)
  }
}

/** `base` with `path` appended, keeping any path prefix the service is served under. */
function at (name: string, base: string, path: string, method: Service['method'], fix: string): Service {
  return { name, url: new URL(base.replace(/\/+$/, '') + path), method, fix }
}

/** The system's word for a failed connection (ECONNREFUSED, ENOTFOUND, …), else fetch's message. */
function reason (err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause
  return cause?.code ?? (err as Error).message
}

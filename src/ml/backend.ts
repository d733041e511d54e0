import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { silentLogger, type Logger } from '../core/logger.ts'

export interface BackendChoice {
  backend: string
  /** Better backends that did not load, and why. */
  skipped: Array<{ backend: string, reason: string }>
}

let chosen: Promise<BackendChoice> | undefined

/**
 * Picks the fastest TF.js backend that loads here: native GPU, native CPU (both need
 * libtensorflow, which their install scripts download from outside the npm registry),
 * then WebAssembly (SIMD), then pure JS. Logs the choice and why the better ones failed.
 * Idempotent.
 */
export async function initBackend (options: { logger?: Logger } = {}): Promise<BackendChoice> {
  chosen ??= choose(options.logger ?? silentLogger)
  return chosen
}

async function choose (logger: Logger): Promise<BackendChoice> {
  const skipped: BackendChoice['skipped'] = []
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg)
      const backend = tf.getBackend()
      logger.info(`TF.js backend: ${backend} (${pkg})`)
      return { backend, skipped }
    } catch (err) {
      const missing = (err as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND'
      skipped.push({
        backend: pkg,
        reason: missing
          ? 'not installed: its install script downloads libtensorflow from outside the npm registry, which this machine cannot reach'
          : `installed but failed to load: ${firstLine(err)}`
      })
    }
  }
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))
    wasm.setWasmPaths(join(dist, '/'))
    if (await tf.setBackend('wasm')) {
      await tf.ready()
      logger.info('TF.js backend: wasm', { skipped })
      return { backend: 'wasm', skipped }
    }
    skipped.push({ backend: 'wasm', reason: 'setBackend("wasm") returned false' })
  } catch (err) {
    skipped.push({ backend: 'wasm', reason: firstLine(err) })
  }
  await tf.setBackend('cpu')
  await tf.ready()
  logger.warn('TF.js backend: cpu (pure JS, slow)', { skipped })
  return { backend: 'cpu', skipped }
}

function firstLine (err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] as string
}

import * as errors from '../../core/errors.ts'
import type { z } from 'zod'
import type { FailedJob } from './job.ts'

const builtins: Record<string, new (message: string) => Error> = { Error, RangeError, TypeError, SyntaxError, ReferenceError, EvalError, URIError }

/**
 * A worker's failure as the error class the same call would have thrown here: a
 * ConclaveError subclass by its name (so callers branching on name and code see no
 * difference), a built-in by its name, else an Error carrying the name.
 */
export function rebuildError ({ name, message }: z.infer<typeof FailedJob>): Error {
  const cls = (errors as Record<string, unknown>)[name]
  if (typeof cls === 'function' && (cls === errors.ConclaveError || cls.prototype instanceof errors.ConclaveError)) {
    return new (cls as new (message: string) => errors.ConclaveError)(message)
  }
  const builtin = Object.hasOwn(builtins, name) ? builtins[name] : undefined
  return builtin === undefined ? Object.assign(new Error(message), { name }) : new builtin(message)
}

/**
 * What scripts/services/ollama.sh compiles Ollama's ggml (cgo) with, and the key its cached
 * binary is stored under, derived from the CPU's flags (the `flags` line of /proc/cpuinfo)
 * and whether the C compiler knows AMX.
 *
 * `node scripts/services/cpu-flags.ts "<flags line>" [--compiler-lacks-amx]` prints the
 * variant on the first line and the C flags on the second.
 */
import { createHash } from 'node:crypto'

/** A native build of Ollama for one CPU. */
export interface NativeBuild {
  /** For both CGO_CFLAGS and CGO_CXXFLAGS. */
  cflags: string[]
  /**
   * What the binary was built for, part of its cache key: `<level>-<hash>` on x86-64 (the
   * hash covers every CPU flag and the C flags, so a binary built with `-march=native` is
   * only reused on a CPU with the same flags), `portable` elsewhere.
   */
  variant: string
}

// ggml's AMX code is gated by `__AMX_INT8__ && __AVX512VNNI__`, and its buffer type lives in
// ggml-cpu/amx/, a folder with no Go file, so cgo never compiles it: a build where the
// compiler targets AMX fails to link (issue 17). GCC 12's -mno-amx-tile leaves AMX-INT8 and
// AMX-BF16 on, hence all three.
const NO_AMX = ['-mno-amx-tile', '-mno-amx-int8', '-mno-amx-bf16']

/** What nativeBuild needs to know about the machine. */
export interface Machine {
  /** The CPU's flags: the `flags` line of /proc/cpuinfo, with or without its label. */
  cpuFlags: string
  /**
   * Whether the C compiler knows AMX (GCC 11, clang 12 and later). Older ones never target
   * AMX, and refuse -mno-amx-*, so they get none.
   * @default true
   */
  compilerKnowsAmx?: boolean
}

/** The C flags and cache variant for a native build on `machine`. */
export function nativeBuild ({ cpuFlags, compilerKnowsAmx = true }: Machine): NativeBuild {
  const flags = new Set(cpuFlags.replace(/^\s*flags\s*:/, '').split(/\s+/).filter(Boolean))
  // Every x86-64 CPU reports long mode (lm); anything else (an ARM `Features` line, an empty
  // string) gets the compiler's defaults for its architecture: slower, but it runs.
  if (!flags.has('lm')) return { cflags: ['-O3'], variant: 'portable' }
  const amx = compilerKnowsAmx && [...flags].some(flag => flag.startsWith('amx_'))
  const cflags = ['-O3', '-march=native', ...(amx ? NO_AMX : [])]
  const hash = createHash('sha256').update(JSON.stringify({ flags: [...flags].sort(), cflags })).digest('hex').slice(0, 12)
  return { cflags, variant: `${level(flags)}-${hash}` }
}

/** A readable name for the widest SIMD the build uses (the hash says exactly what it was built for). */
function level (flags: Set<string>): string {
  if (flags.has('avx512f')) return 'avx512'
  if (flags.has('avx2')) return 'avx2'
  return 'x86-64'
}

if (import.meta.main) {
  const { cflags, variant } = nativeBuild({ cpuFlags: process.argv[2] ?? '', compilerKnowsAmx: process.argv[3] !== '--compiler-lacks-amx' })
  process.stdout.write(`${variant}\n${cflags.join(' ')}\n`)
}

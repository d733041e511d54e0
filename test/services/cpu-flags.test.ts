import { execFileSync, spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nativeBuild } from '../../scripts/services/cpu-flags.ts'

// `flags` lines of /proc/cpuinfo. An Intel Sapphire Rapids VM (an AWS m7i) with AMX; the
// AMD EPYC these tests were written on (Zen 5: AVX-512, no AMX); a Haswell Xeon (AVX2).
const sapphireRapids = 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d arch_capabilities'
const epycZen5 = 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect'
const haswell = 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm invpcid_single pti fsgsbase bmi1 avx2 smep bmi2 erms invpcid xsaveopt md_clear'
// An ARM server's line is called `Features`; ollama.sh passes an empty string when /proc/cpuinfo has no `flags`.
const graviton = 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs'

const noAmx = ['-mno-amx-tile', '-mno-amx-int8', '-mno-amx-bf16']

describe('nativeBuild', () => {
  it.each([
    ['an AMX CPU: native minus AMX', sapphireRapids, ['-O3', '-march=native', ...noAmx], /^avx512-[0-9a-f]{12}$/],
    ['an AVX-512 CPU without AMX: native', epycZen5, ['-O3', '-march=native'], /^avx512-[0-9a-f]{12}$/],
    ['an AVX2 CPU: native', haswell, ['-O3', '-march=native'], /^avx2-[0-9a-f]{12}$/],
    ['a CPU with only the x86-64 baseline: native', 'flags : fpu cx8 cmov mmx fxsr sse sse2 syscall nx lm', ['-O3', '-march=native'], /^x86-64-[0-9a-f]{12}$/],
    ['a non-x86 CPU: the compiler defaults', graviton, ['-O3'], /^portable$/],
    ['no flags at all: the compiler defaults', '', ['-O3'], /^portable$/]
  ])('builds for %s', (_, cpuFlags, cflags, variant) => {
    const build = nativeBuild({ cpuFlags })
    expect(build.cflags).toEqual(cflags)
    expect(build.variant).toMatch(variant)
  })

  it('gives no AMX flags to a compiler that knows no AMX (it never targets AMX, and would refuse them)', () => {
    const build = nativeBuild({ cpuFlags: sapphireRapids, compilerKnowsAmx: false })
    expect(build.cflags).toEqual(['-O3', '-march=native'])
    expect(build.variant).not.toBe(nativeBuild({ cpuFlags: sapphireRapids }).variant)
  })

  it('keys the cache by the whole set of flags, in any order, with or without the label', () => {
    const bare = epycZen5.replace(/^flags\s*:\s*/, '')
    expect(nativeBuild({ cpuFlags: bare.split(' ').reverse().join('  ') })).toEqual(nativeBuild({ cpuFlags: epycZen5 }))
    const variants = [sapphireRapids, epycZen5, haswell, graviton].map(cpuFlags => nativeBuild({ cpuFlags }).variant)
    expect(new Set(variants).size).toBe(4)
  })

  it('never reuses a native binary on a CPU that lacks one of its flags', () => {
    const flags = epycZen5.replace(/^flags\s*:\s*/, '').split(' ')
    const built = nativeBuild({ cpuFlags: epycZen5 }).variant
    fc.assert(fc.property(fc.integer({ min: 0, max: flags.length - 1 }), dropped => {
      expect(nativeBuild({ cpuFlags: flags.filter((_, i) => i !== dropped).join(' ') }).variant).not.toBe(built)
    }), { seed: 17, numRuns: 50 })
  })

  it.each([
    [[], { cpuFlags: sapphireRapids }],
    [['--compiler-lacks-amx'], { cpuFlags: sapphireRapids, compilerKnowsAmx: false }]
  ])('prints the variant and the C flags when run by ollama.sh (%j)', (args, machine) => {
    const out = execFileSync(process.execPath, ['scripts/services/cpu-flags.ts', sapphireRapids, ...args], { encoding: 'utf8' })
    const { variant, cflags } = nativeBuild(machine)
    expect(out).toBe(`${variant}\n${cflags.join(' ')}\n`)
  })
})

// What ggml sees: its AMX path is compiled when `__AMX_INT8__ && __AVX512VNNI__`. With
// -march=sapphirerapids standing in for -march=native on an AMX CPU, the compiler itself
// says which macros the derived flags leave on. Needs GCC 11 or later (ollama.sh needs gcc too).
const gccKnowsSapphireRapids = spawnSync('gcc', ['-march=sapphirerapids', '-E', '-x', 'c', '/dev/null']).status === 0

describe.runIf(gccKnowsSapphireRapids)('the derived flags under gcc on an AMX CPU', () => {
  const macros = (cflags: string[]): string[] => {
    const onSapphireRapids = cflags.map(flag => flag === '-march=native' ? '-march=sapphirerapids' : flag)
    const defined = execFileSync('gcc', [...onSapphireRapids, '-dM', '-E', '-x', 'c++', '/dev/null'], { encoding: 'utf8' })
    return ['__AMX_INT8__', '__AVX512VNNI__', '__AVX512F__'].filter(macro => defined.includes(`#define ${macro} `))
  }

  it('turn ggml\'s AMX path off and keep AVX-512', () => {
    expect(macros(['-O3', '-march=native'])).toEqual(['__AMX_INT8__', '__AVX512VNNI__', '__AVX512F__'])
    expect(macros(nativeBuild({ cpuFlags: sapphireRapids }).cflags)).toEqual(['__AVX512VNNI__', '__AVX512F__'])
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConclaveError } from '../../src/core/errors.ts'
import { Charter, type Vote } from '../../src/core/records.ts'
import { assertFollowsTerms, ruling } from '../../src/federation/acceptance-terms.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createIdentity, verifyRecord } from '../../src/identity/index.ts'
import { AcceptanceTerms, type Measured, MEASURED_LIMIT, VoteMeasurement } from '../../src/core/terms.ts'

const runs = { seed: 1415, numRuns: 1000 }

const score = fc.double({ min: -100, max: 100, noNaN: true })
const cosine = fc.double({ min: -1, max: 1, noNaN: true })
const Robustness = fc.option(fc.record({
  maxNormRatio: fc.double({ min: 0.1, max: 10, noNaN: true }),
  minCosine: cosine,
  minHistoryCosine: cosine,
  maxEarlierCosine: cosine
}), { nil: undefined })
const ToleranceTerms = fc.record({
  rule: fc.constant('tolerance' as const),
  tolerance: fc.double({ min: 0, max: 1, noNaN: true }),
  relativeTolerance: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
  scale: fc.constantFrom('full' as const, 'share' as const),
  robustness: Robustness
}, { requiredKeys: ['rule', 'tolerance', 'relativeTolerance', 'scale'] })
const ClasswiseTerms = fc.record({
  rule: fc.constant('classwise' as const),
  tolerance: fc.double({ min: 0, max: 1, noNaN: true }),
  relativeTolerance: fc.constant(0),
  minGain: fc.double({ min: -1, max: 1, noNaN: true }),
  classRatio: fc.double({ min: 1, max: 100, noNaN: true }),
  scale: fc.constantFrom('full' as const, 'share' as const),
  robustness: Robustness
}, { requiredKeys: ['rule', 'tolerance', 'relativeTolerance', 'minGain', 'classRatio', 'scale'] })
const Terms = fc.oneof(ToleranceTerms, ClasswiseTerms)
const Geometry = fc.record({
  normRatio: fc.double({ min: 0, max: 100, noNaN: true }),
  cosine,
  earlierCosine: cosine,
  historyCosine: cosine
}, { requiredKeys: ['earlierCosine', 'historyCosine'] })
const Classes = fc.array(fc.record({ label: fc.nat(63), n: fc.integer({ min: 1, max: 500 }), combined: score, without: score }), { maxLength: 64 })
const MeasuredArb: fc.Arbitrary<Measured> = fc.record({ before: score, after: score, initial: score, combined: score, without: score, classes: Classes, geometry: Geometry }, { requiredKeys: ['before', 'after'] })
/** A value no vote may sign: not a number JSON carries, or beyond the limit. */
const unsignable = fc.oneof(fc.constantFrom(Number.NaN, Infinity, -Infinity), fc.tuple(fc.double({ min: MEASURED_LIMIT * 1.0001, noDefaultInfinity: true, noNaN: true }), fc.boolean()).map(([x, negative]) => negative ? -x : x))

const vote = (accept: boolean, measurement?: VoteMeasurement): Vote =>
  ({ type: 'vote', federation: 'fed', round: 1, proposal: 'a'.repeat(64), accept, score: 0, rationale: 'fuzz', ...(measurement === undefined ? {} : { measurement }) })

describe('acceptance terms and signed measurements (fuzz)', () => {
  it('parse any input without throwing, and what parses survives JSON (the bytes a JWT signs) unchanged', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.oneof(fc.jsonValue(), MeasuredArb), (terms, measured) => {
      const t = AcceptanceTerms.safeParse(terms)
      const m = VoteMeasurement.safeParse(measured)
      // JSON keeps every number but the sign of a zero, which no rule can tell from zero.
      if (t.success) expect(JSON.stringify(AcceptanceTerms.parse(JSON.parse(JSON.stringify(t.data))))).toBe(JSON.stringify(t.data))
      if (m.success) expect(JSON.stringify(VoteMeasurement.parse(JSON.parse(JSON.stringify(m.data))))).toBe(JSON.stringify(m.data))
    }), runs)
  })

  it('refuse NaN, infinite and huge values in every measured field, and unknown fields', () => {
    fc.assert(fc.property(MeasuredArb, fc.constantFrom('before', 'after', 'initial', 'combined', 'without', 'normRatio', 'class'), unsignable, (measured, field, bad) => {
      const damaged = field === 'normRatio'
        ? { ...measured, geometry: { earlierCosine: -1, historyCosine: -1, ...measured.geometry, normRatio: bad } }
        : field === 'class' ? { ...measured, classes: [...(measured.classes ?? []).slice(0, 63), { label: 0, n: 1, combined: bad, without: 0 }] } : { ...measured, [field]: bad }
      expect(VoteMeasurement.safeParse(damaged).success).toBe(false)
      expect(VoteMeasurement.safeParse({ ...measured, accept: true }).success).toBe(false)
    }), runs)
  })

  it('a vote follows the terms exactly when its accept is what they decide from its measurement', () => {
    fc.assert(fc.property(Terms, MeasuredArb, fc.boolean(), (terms, measured, accept) => {
      const scores = terms.rule === 'classwise'
        ? measured.combined !== undefined && measured.without !== undefined && measured.classes !== undefined
        : terms.relativeTolerance === 0 || measured.initial !== undefined
      const needed = scores && (terms.robustness === undefined || measured.geometry !== undefined)
      const decided = ruling(terms, measured).accept
      let refusal: string | undefined
      try {
        assertFollowsTerms(terms, vote(accept, measured), 'the vote')
      } catch (err) {
        if (!(err instanceof ConclaveError)) throw err
        refusal = err.name
      }
      expect(refusal).toBe(!needed ? 'UnmeasuredVoteError' : accept === decided ? undefined : 'VoteAgainstRuleError')
    }), runs)
  })

  it('under the probation rule, a vote follows the terms exactly when its accept is what they decide for the proposer\'s standing', () => {
    const ProbationTerms = fc.record({
      rule: fc.constant('probation' as const),
      tolerance: fc.constant(0.1),
      relativeTolerance: fc.constant(0),
      minGain: fc.double({ min: -1, max: 1, noNaN: true }),
      classRatio: fc.double({ min: 1, max: 100, noNaN: true }),
      probationGain: fc.double({ min: 0, max: 1, noNaN: true }),
      scale: fc.constant('share' as const)
    })
    const WithReference = fc.tuple(MeasuredArb, fc.option(score, { nil: undefined })).map(([m, reference]) => reference === undefined ? m : { ...m, reference })
    fc.assert(fc.property(ProbationTerms, WithReference, fc.constantFrom('new' as const, 'good' as const, 'bad' as const), fc.boolean(), (terms, measured, standing, accept) => {
      const needed = measured.combined !== undefined && measured.without !== undefined && measured.classes !== undefined && measured.reference !== undefined
      let refusal: string | undefined
      try {
        assertFollowsTerms(terms, vote(accept, measured), 'the vote', standing)
      } catch (err) {
        if (!(err instanceof ConclaveError)) throw err
        refusal = err.name
      }
      expect(refusal).toBe(!needed ? 'UnmeasuredVoteError' : accept === ruling(terms, measured, standing).accept ? undefined : 'VoteAgainstRuleError')
    }), runs)
  })

  it('refuses a vote without measurement, and an accept of an update found unusable', () => {
    fc.assert(fc.property(Terms, fc.boolean(), (terms, accept) => {
      expect(() => assertFollowsTerms(terms, vote(accept), 'the vote')).toThrow(expect.objectContaining({ name: 'UnmeasuredVoteError', code: 'ERR_UNMEASURED_VOTE' }))
      const unusable = (): void => assertFollowsTerms(terms, vote(accept, { unusable: 'ERR_CONTENT_MISMATCH' }), 'the vote')
      if (accept) expect(unusable).toThrow(expect.objectContaining({ name: 'UnusableUpdateError' }))
      else expect(unusable).not.toThrow()
    }), runs)
  })

  it('a signed vote decides the same after signing and verifying', async () => {
    const voter = createIdentity(randomSecretKey())
    await fc.assert(fc.asyncProperty(Terms, MeasuredArb, async (terms, measured) => {
      const accept = ruling(terms, measured).accept
      const signed = await verifyRecord(await voter.sign(vote(accept, measured)))
      expect(signed.record.type === 'vote' && signed.record.measurement).toEqual(JSON.parse(JSON.stringify(measured)))
      expect(() => assertFollowsTerms(terms, signed.record as Vote, 'the vote')).not.toThrow(expect.objectContaining({ name: 'VoteAgainstRuleError' }))
    }), { ...runs, numRuns: 100 })
  })

  it('a charter carries any valid terms, and none (charters before them)', () => {
    const base = { type: 'charter', federation: 'fed', round: 0, members: ['did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'], quorum: { kind: 'count', count: 1 }, windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i', sha256: 'a'.repeat(64) } }
    expect(Charter.safeParse(base).success).toBe(true)
    fc.assert(fc.property(Terms, terms => { expect(Charter.parse({ ...base, acceptance: terms }).acceptance).toEqual(AcceptanceTerms.parse(terms)) }), runs)
    expect(Charter.safeParse({ ...base, acceptance: { rule: 'tolerance', tolerance: 2, relativeTolerance: 0, scale: 'full' } }).success).toBe(false)
    // A term its rule does not read: no founder's termsOf writes it, so no peer takes it.
    const tolerance = { rule: 'tolerance', tolerance: 0.1, relativeTolerance: 0, scale: 'full' }
    for (const [rule, term] of [['tolerance', { minGain: 0.1 }], ['improve', { classRatio: 2 }], ['classwise', { probationGain: 0.1 }], ['standing', { minSharpening: 0.4 }], ['classwise', { sharpeningYardstick: 'round' }], ['standing', { minMovement: 0.5 }], ['marginal', { strikes: 2 }], ['standing', { gainingVouchers: true }], ['standing', { probationOnce: true, strikes: 2 }]] as const) {
      const parsed = AcceptanceTerms.safeParse({ ...tolerance, rule, ...term })
      expect(parsed.success).toBe(false)
      expect(parsed.error?.issues[0]?.message).toMatch(new RegExp(`^${Object.keys(term)[0] as string} applies to the .*, not to ${rule}$`))
    }
    expect(AcceptanceTerms.safeParse({ ...tolerance, rule: 'probation', minGain: -0.1, classRatio: 1.8, probationGain: 0.5, strikes: 2, gainingVouchers: true, badOnProbation: true, probationOnce: true, minSharpening: 0.45, sharpeningYardstick: 'round', minMovement: 0.54 }).success).toBe(true)
    expect(AcceptanceTerms.safeParse({ ...tolerance, rule: 'probation', minGain: -0.1, classRatio: 1.8, probationGain: 0.5, probationOnce: true }).success).toBe(false)
  })
})

/**
 * The release analysis: the new version's figures in a step against the primary's
 * (Kayenta-style, kept small). Too few calls to the new version: wait. Its error rate
 * above the primary's by more than `maxErrorRateIncrease` and significantly so (a
 * one-sided two-proportion z-test at `confidence`): fail. Its p99 above the primary's
 * × (1 + `p99Tolerance`) + `p99SlackMs` (the mean RT when either side pushed no p99): fail. Otherwise it may pass (once the step has
 * been held long enough, which the caller decides).
 */
import type { ReleaseSettings } from './release-spec.js';

/** One version's figures over a step. */
export interface VersionFigures {
  calls: number;
  errors: number;
  /** Mean of the per-second RT p99s, ms; undefined when none was pushed. */
  p99?: number;
  /** Mean RT over the calls, ms (judged instead of p99 when either side has no p99). */
  rtAvg?: number;
}

/** What the analysis says of a step. */
export interface StepVerdict {
  verdict: 'pass' | 'fail' | 'wait';
  reason: string;
}

/** The one-sided z of a confidence (inverse normal CDF, Acklam's rational approximation). */
export function zOf(confidence: number): number {
  const p = confidence;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const q = Math.sqrt(-2 * Math.log(1 - p));
  if (p > 0.97575)
    return (
      -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  const r = p - 0.5;
  const r2 = r * r;
  return (
    ((((((a[0]! * r2 + a[1]!) * r2 + a[2]!) * r2 + a[3]!) * r2 + a[4]!) * r2 + a[5]!) * r) /
    (((((b[0]! * r2 + b[1]!) * r2 + b[2]!) * r2 + b[3]!) * r2 + b[4]!) * r2 + 1)
  );
}

function pct(v: number): string {
  return `${Math.round(v * 10_000) / 100}%`;
}

/**
 * Judges the new version (`canary`) against the primary (`baseline`). A baseline with no
 * calls (the last step, all traffic on the new version) is judged against the figures
 * the primary had at the previous step, if given, else against the bounds alone.
 */
export function judgeStep(
  baseline: VersionFigures,
  canary: VersionFigures,
  s: Pick<
    ReleaseSettings,
    'minSamples' | 'maxErrorRateIncrease' | 'p99Tolerance' | 'p99SlackMs' | 'confidence'
  >,
): StepVerdict {
  if (canary.calls < s.minSamples)
    return {
      verdict: 'wait',
      reason: `${canary.calls} of ${s.minSamples} calls to the new version so far`,
    };
  const pc = canary.errors / canary.calls;
  const pb = baseline.calls > 0 ? baseline.errors / baseline.calls : 0;
  if (pc - pb > s.maxErrorRateIncrease) {
    let significant = true;
    if (baseline.calls > 0) {
      const pooled = (canary.errors + baseline.errors) / (canary.calls + baseline.calls);
      const se = Math.sqrt(pooled * (1 - pooled) * (1 / canary.calls + 1 / baseline.calls));
      significant = se === 0 || (pc - pb - s.maxErrorRateIncrease) / se > zOf(s.confidence);
    }
    if (significant)
      return {
        verdict: 'fail',
        reason: `error rate ${pct(pc)} of ${canary.calls} calls against ${pct(pb)} of ${baseline.calls} (allowed +${pct(s.maxErrorRateIncrease)})`,
      };
  }
  // RT p99 when both sides pushed one (a SlidingWindow's), else the mean RT (guard's
  // per-second metrics carry no percentile), with the same tolerance.
  const both = canary.p99 !== undefined && baseline.p99 !== undefined;
  const [c, b, what] = both
    ? [canary.p99, baseline.p99, 'p99']
    : [canary.rtAvg, baseline.rtAvg, 'RT avg'];
  if (c !== undefined && b !== undefined) {
    const bound = b * (1 + s.p99Tolerance) + s.p99SlackMs;
    if (c > bound)
      return {
        verdict: 'fail',
        reason: `${what} ${Math.round(c * 10) / 10} ms against ${Math.round(b * 10) / 10} ms (allowed up to ${Math.round(bound * 10) / 10} ms)`,
      };
  }
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v * 10) / 10} ms`);
  return {
    verdict: 'pass',
    reason: `error rate ${pct(pc)} (primary ${pct(pb)}), ${what} ${ms(c)} (primary ${ms(b)}) over ${canary.calls} calls`,
  };
}

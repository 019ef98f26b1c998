/**
 * How a scaling policy turns a figure into an instance count, as Kubernetes' HPA does:
 *
 * 1. the raw recommendation is `ceil(current × figure / target)`, or `current` while
 *    figure / target is within 1 ± tolerance, bounded by min and max;
 * 2. stabilisation: a scale-out takes the lowest recommendation of the last
 *    `scaleUpWindowMs`, a scale-in the highest of the last `scaleDownWindowMs` (so a dip
 *    must last the whole window before instances go);
 * 3. at most `step` instances change at once;
 * 4. no change within `cooldownMs` of the previous one (no flapping);
 * 5. below min or above max is corrected at once, cooldown or not.
 *
 * Time comes in as `now` (the caller's clock), so the windows are tested exactly.
 */
import type { ResolvedPolicy } from './scale-policy.js';

/** What one evaluation decided. */
export interface ScaleVerdict {
  action: 'out' | 'in' | 'hold';
  /** The count to run (the current one on a hold). */
  desired: number;
  /** The raw recommendation before stabilisation, step and cooldown. */
  raw: number;
  /** Why, in words (`cpu 85 > target 60`, `cooldown`, `stabilising`). */
  reason: string;
}

/** The inputs of one evaluation. */
export interface ScaleInput {
  policy: ResolvedPolicy;
  /** The count in force now. */
  current: number;
  /** The policy's figure now; undefined when nothing measured it. */
  value: number | undefined;
  /** Now, epoch ms. */
  now: number;
  /** When the count last changed, epoch ms. */
  lastChangeAt: number | undefined;
}

/** Keeps one service's recent recommendations and decides (see the module comment). */
export class ScaleRecommender {
  #recs: { at: number; desired: number }[] = [];

  /** Decides for one evaluation and remembers its recommendation. */
  decide(input: ScaleInput): ScaleVerdict {
    const { policy: p, current, value, now } = input;
    if (current < p.min)
      return { action: 'out', desired: p.min, raw: p.min, reason: `below min ${p.min}` };
    if (current > p.max)
      return { action: 'in', desired: p.max, raw: p.max, reason: `above max ${p.max}` };
    if (value === undefined)
      return { action: 'hold', desired: current, raw: current, reason: `no ${p.metric} figure` };
    const ratio = value / p.target;
    let raw: number;
    if (current === 0) raw = value > 0 ? 1 : 0;
    else if (Math.abs(ratio - 1) <= p.tolerance) raw = current;
    else raw = Math.ceil(current * ratio - 1e-9);
    raw = Math.min(p.max, Math.max(p.min, raw));
    const figure = `${p.metric} ${round(value)} ${value > p.target ? '>' : value < p.target ? '<' : '='} target ${p.target}`;

    const keep = Math.max(p.scaleUpWindowMs, p.scaleDownWindowMs);
    this.#recs = this.#recs.filter((r) => now - r.at < keep);
    this.#recs.push({ at: now, desired: raw });
    let desired = current;
    if (raw > current) {
      const inWindow = this.#recs.filter((r) => now - r.at < p.scaleUpWindowMs || r.at === now);
      desired = Math.max(current, Math.min(...inWindow.map((r) => r.desired)));
      desired = Math.min(desired, current + p.step);
    } else if (raw < current) {
      const inWindow = this.#recs.filter((r) => now - r.at < p.scaleDownWindowMs || r.at === now);
      desired = Math.min(current, Math.max(...inWindow.map((r) => r.desired)));
      desired = Math.max(desired, current - p.step);
    }
    if (desired === current) {
      const why =
        raw === current
          ? `${figure}: within tolerance or at a bound`
          : `${figure}: stabilising (${raw > current ? 'scale-up' : 'scale-down'} window)`;
      return { action: 'hold', desired: current, raw, reason: why };
    }
    if (input.lastChangeAt !== undefined && now - input.lastChangeAt < p.cooldownMs) {
      return {
        action: 'hold',
        desired: current,
        raw,
        reason: `${figure}: cooldown (${Math.ceil((p.cooldownMs - (now - input.lastChangeAt)) / 1000)} s left)`,
      };
    }
    return { action: desired > current ? 'out' : 'in', desired, raw, reason: figure };
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/**
 * The capacity probe (EDAS): raise one instance's load-balancer weight step by step, so
 * the traffic already flowing (real, or a stress run beside it) sends it more, measure it at
 * each step, and stop at the first step that breaks the SLA (p99, error rate, CPU); the
 * instance's capacity is the highest QPS of a step that passed. The instance gets its old
 * weight back whatever happens.
 */
import type { CapacitySla, CapacityStep } from './capacity-plan.js';

/** What the probe drives: the weight, and a measurement of the instance at that weight. */
export interface ProbeTarget {
  /** The instance's weight now (restored at the end). */
  currentWeight(): Promise<number>;
  setWeight(weight: number): Promise<void>;
  /** Measures the instance over a settled window at the weight just set. */
  measure(weight: number): Promise<{ qps: number; p99Ms: number; errorRate: number; cpu?: number }>;
}

/** Options of {@link probeCapacity}. */
export interface ProbeOptions {
  sla: CapacitySla;
  /** Weights to try, rising. */
  weights: readonly number[];
  /** Called after each step. */
  onStep?: (step: CapacityStep) => void;
}

/** The probe's result. */
export interface CapacityProbeResult {
  /** Highest QPS of a passing step (0 when none passed). */
  maxQps: number;
  /** p99 at that step. */
  p99Ms: number | undefined;
  steps: CapacityStep[];
  /** Why it stopped: the SLA broke at a step, or the weights ran out. */
  stoppedBy: 'sla' | 'weights';
}

/** Runs the probe. */
export async function probeCapacity(
  target: ProbeTarget,
  options: ProbeOptions,
): Promise<CapacityProbeResult> {
  const original = await target.currentWeight();
  const steps: CapacityStep[] = [];
  let best: CapacityStep | undefined;
  let stoppedBy: CapacityProbeResult['stoppedBy'] = 'weights';
  try {
    for (const weight of options.weights) {
      await target.setWeight(weight);
      const m = await target.measure(weight);
      const passed =
        m.p99Ms <= options.sla.p99Ms &&
        m.errorRate <= options.sla.errorRate &&
        (options.sla.cpu === undefined || m.cpu === undefined || m.cpu <= options.sla.cpu);
      const step: CapacityStep = {
        weight,
        qps: m.qps,
        p99Ms: m.p99Ms,
        errorRate: m.errorRate,
        ...(m.cpu === undefined ? {} : { cpu: m.cpu }),
        passed,
      };
      steps.push(step);
      options.onStep?.(step);
      if (!passed) {
        stoppedBy = 'sla';
        break;
      }
      if (best === undefined || step.qps > best.qps) best = step;
    }
  } finally {
    await target.setWeight(original);
  }
  return { maxQps: best?.qps ?? 0, p99Ms: best?.p99Ms, steps, stoppedBy };
}

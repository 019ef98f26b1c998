/**
 * Load models, as in Gatling and k6: open models send at an arrival rate whatever the
 * target answers (constant, ramping, held steps; a surge is a short high step), so a slow
 * target cannot slow the load down and hide itself; the closed model runs a fixed number
 * of virtual users, each starting its next iteration when the last one ended.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** One stage of a stepped or ramping model: a rate (iterations/s) held or reached over `durationS`. */
export interface RateStage {
  rate: number;
  durationS: number;
}

/** Iterations started at a fixed rate for a time (k6 `constant-arrival-rate`). */
export interface ConstantRateModel {
  kind: 'constant-rate';
  rate: number;
  durationS: number;
}

/** The rate moves linearly from `startRate` to each stage's rate over that stage (k6 `ramping-arrival-rate`). */
export interface RampingRateModel {
  kind: 'ramping-rate';
  startRate: number;
  stages: RateStage[];
}

/** Each stage's rate held for its duration, then the next (PTS steps; a surge is a short high stage). */
export interface SteppedRateModel {
  kind: 'steps';
  stages: RateStage[];
}

/** `vus` virtual users, each running iterations back to back (closed model). */
export interface VirtualUsersModel {
  kind: 'virtual-users';
  vus: number;
  durationS: number;
}

/** An open (arrival-rate) model. */
export type OpenModel = ConstantRateModel | RampingRateModel | SteppedRateModel;

/** Any load model. */
export type LoadModel = OpenModel | VirtualUsersModel;

/** `rate` iterations/s for `durationS` seconds. */
export function constantRate(rate: number, durationS: number): ConstantRateModel {
  return validateModel({ kind: 'constant-rate', rate, durationS });
}

/** From `startRate`, linearly to each stage's rate over its duration. */
export function rampingRate(startRate: number, stages: RateStage[]): RampingRateModel {
  return validateModel({ kind: 'ramping-rate', startRate, stages });
}

/** Each stage's rate held for its duration. */
export function rateSteps(stages: RateStage[]): SteppedRateModel {
  return validateModel({ kind: 'steps', stages });
}

/** `vus` virtual users for `durationS` seconds. */
export function virtualUsers(vus: number, durationS: number): VirtualUsersModel {
  return validateModel({ kind: 'virtual-users', vus, durationS });
}

function invalid(message: string): PeakError {
  return new PeakError(ErrorCodes.STRESS_INVALID, `load model: ${message}`, {
    details: { input: 'load' },
  });
}

function checkNumber(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw invalid(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
}

const MAX_RATE = 10_000_000;
const MAX_SECONDS = 7 * 24 * 3600;

/** Checks a model (a plain object from a scenario file, say); returns it or throws PEAK_STRESS_INVALID. */
export function validateModel<M extends LoadModel>(model: M): M {
  if (typeof model !== 'object' || model === null) throw invalid('expected an object');
  switch (model.kind) {
    case 'constant-rate':
      checkNumber('rate', model.rate, 0, MAX_RATE);
      checkNumber('durationS', model.durationS, 0, MAX_SECONDS);
      break;
    case 'ramping-rate':
    case 'steps':
      if (model.kind === 'ramping-rate') checkNumber('startRate', model.startRate, 0, MAX_RATE);
      if (!Array.isArray(model.stages) || model.stages.length === 0)
        throw invalid('stages must be a non-empty array of { rate, durationS }');
      for (const [i, s] of model.stages.entries()) {
        checkNumber(`stages[${i}].rate`, s.rate, 0, MAX_RATE);
        checkNumber(`stages[${i}].durationS`, s.durationS, 0, MAX_SECONDS);
      }
      break;
    case 'virtual-users':
      checkNumber('vus', model.vus, 1, 100_000);
      if (!Number.isInteger(model.vus)) throw invalid('vus must be an integer');
      checkNumber('durationS', model.durationS, 0, MAX_SECONDS);
      break;
    default:
      throw invalid(
        `kind must be constant-rate, ramping-rate, steps or virtual-users, got ${JSON.stringify((model as { kind?: unknown }).kind)}`,
      );
  }
  return model;
}

/** The model's length in seconds. */
export function modelDurationS(model: LoadModel): number {
  if (model.kind === 'constant-rate' || model.kind === 'virtual-users') return model.durationS;
  return model.stages.reduce((s, st) => s + st.durationS, 0);
}

/** True for arrival-rate models. */
export function isOpenModel(model: LoadModel): model is OpenModel {
  return model.kind !== 'virtual-users';
}

/** The target arrival rate (iterations/s) at `tS` seconds into an open model; 0 past its end. */
export function rateAt(model: OpenModel, tS: number): number {
  if (tS < 0) return 0;
  if (model.kind === 'constant-rate') return tS < model.durationS ? model.rate : 0;
  let start = 0;
  let from = model.kind === 'ramping-rate' ? model.startRate : 0;
  for (const s of model.stages) {
    if (tS < start + s.durationS) {
      if (model.kind === 'steps') return s.rate;
      const f = s.durationS === 0 ? 1 : (tS - start) / s.durationS;
      return from + (s.rate - from) * f;
    }
    start += s.durationS;
    from = s.rate;
  }
  return 0;
}

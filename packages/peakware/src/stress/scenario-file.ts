/**
 * Loads a scenario file for `peak stress run`: a JavaScript module (or TypeScript, on a
 * Node that strips types) whose default export, or export `scenario`, is a scenario or a
 * function (sync or async) returning one; it is checked by `defineScenario`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { defineScenario, type Scenario, type ScenarioSpec } from './scenario.js';

/** Imports and checks the scenario in `file`. */
export async function loadScenarioFile(file: string): Promise<Scenario> {
  const abs = path.resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PeakError(
      ErrorCodes.STRESS_SCENARIO,
      `cannot load the scenario file ${abs}: ${(err as Error).message}` +
        (abs.endsWith('.ts') ? ' (compile it to .js, or use a Node that runs .ts files)' : ''),
      { details: { input: file }, cause: err },
    );
  }
  let value = mod.default ?? mod.scenario;
  if (typeof value === 'function') value = await (value as () => unknown)();
  if (typeof value !== 'object' || value === null)
    throw new PeakError(
      ErrorCodes.STRESS_SCENARIO,
      `${abs} exports no scenario: export default defineScenario({ ... }) (or a function returning one)`,
      { details: { input: file } },
    );
  const spec = value as ScenarioSpec & { feed?: unknown };
  return 'feed' in spec ? (spec as Scenario) : defineScenario(spec);
}

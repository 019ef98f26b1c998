/**
 * The app file `peak supervise` runs (YAML or JSON): the app (config namespace), and per
 * service the command of its instances, how many, its version label and how long a
 * graceful stop may take. Checked as a whole; the first problem names its path
 * (`services[1].instances: ...`).
 *
 * ```yaml
 * app: shop
 * services:
 *   - name: shop.inventory
 *     command: node dist/inventory.js
 *     instances: 2
 *     version: v1
 *     stopTimeoutMs: 10000
 *     env: { }
 * ```
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { parseYamlSubset } from './yaml-subset.js';

/** One supervised service. */
export interface ServiceSpec {
  /** The service name (as it registers and pushes metrics), e.g. `shop.inventory`. */
  name: string;
  /** The command line of one instance (split on spaces, quotes honoured; no shell). */
  command: string;
  /** How many instances to run while the control plane says nothing else. Default 1. */
  instances: number;
  /** The version label of this command (a release names the next one). Default `v1`. */
  version: string;
  /** How long SIGTERM may take before SIGKILL, ms. Default 10 000. */
  stopTimeoutMs: number;
  /** Extra environment of every instance. */
  env: Record<string, string>;
}

/** An app file, defaults applied. */
export interface AppSpec {
  /** The app: the config namespace its scaling policies live in. */
  app: string;
  /** The working folder of the instances (default: the app file's folder). */
  cwd: string;
  services: ServiceSpec[];
}

/** Names as the control plane takes them (app, service, version). */
export const SCALE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Defaults of a {@link ServiceSpec}, in one place. */
export const SERVICE_DEFAULTS = { instances: 1, version: 'v1', stopTimeoutMs: 10_000 } as const;

function invalid(pathName: string, reason: string): PeakError {
  return new PeakError(ErrorCodes.SCALE_INVALID, `${pathName}: ${reason}`, {
    details: { path: pathName },
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a parsed app file and applies the defaults; throws PEAK_SCALE_INVALID naming the path. */
export function checkAppSpec(raw: unknown, baseDir: string): AppSpec {
  if (!isObject(raw)) throw invalid('$', 'must be a mapping with app and services');
  for (const k of Object.keys(raw))
    if (!['app', 'cwd', 'services'].includes(k)) throw invalid(k, 'is not a field of an app file');
  if (typeof raw.app !== 'string' || !SCALE_NAME.test(raw.app))
    throw invalid('app', 'must be 1-128 letters, digits or _ . -');
  if (raw.cwd !== undefined && typeof raw.cwd !== 'string') throw invalid('cwd', 'must be a path');
  if (!Array.isArray(raw.services) || raw.services.length === 0)
    throw invalid('services', 'must be a non-empty list');
  const names = new Set<string>();
  const services = raw.services.map((s, i): ServiceSpec => {
    const at = `services[${i}]`;
    if (!isObject(s)) throw invalid(at, 'must be a mapping');
    for (const k of Object.keys(s))
      if (!['name', 'command', 'instances', 'version', 'stopTimeoutMs', 'env'].includes(k))
        throw invalid(`${at}.${k}`, 'is not a field of a service');
    if (typeof s.name !== 'string' || !SCALE_NAME.test(s.name))
      throw invalid(`${at}.name`, 'must be 1-128 letters, digits or _ . -');
    if (names.has(s.name)) throw invalid(`${at}.name`, `'${s.name}' is listed twice`);
    names.add(s.name);
    if (typeof s.command !== 'string' || splitCommand(s.command).length === 0)
      throw invalid(`${at}.command`, 'must be a command line');
    const instances = s.instances ?? SERVICE_DEFAULTS.instances;
    if (
      typeof instances !== 'number' ||
      !Number.isInteger(instances) ||
      instances < 0 ||
      instances > 1000
    )
      throw invalid(`${at}.instances`, 'must be an integer from 0 to 1000');
    const version = s.version ?? SERVICE_DEFAULTS.version;
    if (typeof version !== 'string' || !SCALE_NAME.test(version))
      throw invalid(`${at}.version`, 'must be 1-128 letters, digits or _ . -');
    const stop = s.stopTimeoutMs ?? SERVICE_DEFAULTS.stopTimeoutMs;
    if (typeof stop !== 'number' || !(stop >= 100 && stop <= 600_000))
      throw invalid(`${at}.stopTimeoutMs`, 'must be a number of ms from 100 to 600000');
    const env: Record<string, string> = {};
    if (s.env !== undefined && s.env !== null) {
      if (!isObject(s.env)) throw invalid(`${at}.env`, 'must be a mapping of names to values');
      for (const [k, v] of Object.entries(s.env)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
          throw invalid(`${at}.env.${k}`, 'must be a string, number or boolean');
        env[k] = String(v);
      }
    }
    return { name: s.name, command: s.command, instances, version, stopTimeoutMs: stop, env };
  });
  return {
    app: raw.app,
    cwd: path.resolve(baseDir, typeof raw.cwd === 'string' ? raw.cwd : '.'),
    services,
  };
}

/** Reads an app file (`.json`, else the YAML subset) and checks it. */
export async function loadAppSpec(file: string): Promise<AppSpec> {
  const text = await readFile(file, 'utf8');
  const raw = file.endsWith('.json') ? (JSON.parse(text) as unknown) : parseYamlSubset(text);
  return checkAppSpec(raw, path.dirname(path.resolve(file)));
}

/** Splits a command line into argv: spaces separate, single or double quotes group. */
export function splitCommand(command: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let any = false;
  for (const c of command) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      any = true;
    } else if (/\s/.test(c)) {
      if (any || cur !== '') out.push(cur);
      cur = '';
      any = false;
    } else cur += c;
  }
  if (quote !== undefined) return [];
  if (any || cur !== '') out.push(cur);
  return out;
}

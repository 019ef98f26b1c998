/** Query parameters the telemetry read routes share: how far back, how many, yes/no flags. */
import { Type } from '@sinclair/typebox';
import { StringEnum, WithDefault } from '../../server/route-schema.js';

/** How far back, in minutes (at most 31 days); `fallback` when absent. */
export const sinceMinutes = (fallback: number) =>
  WithDefault(
    Type.Number({ exclusiveMinimum: 0, maximum: 60 * 24 * 31, description: 'minutes back' }),
    fallback,
  );

/** How many rows, 1 to `max`; `fallback` when absent. */
export const limit = (fallback: number, max: number) =>
  WithDefault(Type.Integer({ minimum: 1, maximum: max }), fallback);

/** A yes/no filter: `true`/`1`, `false`/`0`, or absent. */
export const flag = Type.Optional(StringEnum(['true', 'false', '1', '0']));

/** A {@link flag}'s value: `true`/`1`, `false`/`0`, or absent. */
export function bool(v: 'true' | 'false' | '1' | '0' | undefined): boolean | undefined {
  return v === undefined ? undefined : v === 'true' || v === '1';
}

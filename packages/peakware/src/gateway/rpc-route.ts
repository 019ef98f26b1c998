/**
 * `rpcRoute`: a route to a Peakware RPC method built from the service definition, so the
 * gateway checks requests with the method's own zod schema (carried as JSON Schema) and the
 * OpenAPI document shows it.
 */
import { z } from 'zod';
import type { MethodSpec, ServiceDefinition } from '../rpc/service-definition.js';
import type { GatewayRouteSpec } from './gateway-objects.js';

type RpcTargetSpec = Extract<GatewayRouteSpec['target'], { kind: 'rpc' }>;

/** A route to an RPC method: everything of a route but its target, plus the target's extras. */
export type RpcRouteOptions = Omit<GatewayRouteSpec, 'target'> &
  Partial<Pick<RpcTargetSpec, 'mapping' | 'statusField' | 'statuses' | 'group'>>;

function jsonSchema(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  } catch {
    return undefined;
  }
}

/** The route `options` with `def.methods[method]` as its target, schemas included. */
export function rpcRoute<D extends ServiceDefinition>(
  def: D,
  method: keyof D['methods'] & string,
  options: RpcRouteOptions,
): GatewayRouteSpec {
  const spec = def.methods[method] as MethodSpec;
  const { mapping, statusField, statuses, group, ...route } = options;
  const input = jsonSchema(spec.input);
  const output = jsonSchema(spec.output);
  return {
    ...route,
    target: {
      kind: 'rpc',
      service: def.name,
      method,
      ...(def.version === undefined ? {} : { version: def.version }),
      ...((group ?? def.group) === undefined ? {} : { group: (group ?? def.group)! }),
      ...(input === undefined ? {} : { input }),
      ...(output === undefined ? {} : { output }),
      ...(spec.idempotent === true ? { idempotent: true } : {}),
      ...(mapping === undefined ? {} : { mapping }),
      ...(statusField === undefined ? {} : { statusField }),
      ...(statuses === undefined ? {} : { statuses }),
    },
  };
}

/**
 * What every service process of the chain shares: its settings from the environment the
 * chain starts it with, the shop database pool, registration with the control plane, the
 * guard, telemetry, the RPC server, the ready line, and a graceful stop on SIGTERM or
 * SIGINT (deregister and drain first, then the service's own parts, then the shared ones).
 * Each `*-service.ts` beside this file is one service: it builds what it owns on a runtime
 * and calls {@link ServiceRuntime.ready}.
 */
import { Guard, guardRpcFilter } from 'peakware/guard';
import { HttpRegistry } from 'peakware/registry';
import { RpcServer } from 'peakware/rpc';
import { rpcTracingFilter, type Tracer } from 'peakware/telemetry';
import pg from 'pg';
import { warmPool } from '../shop-database.js';
import { type ShopTelemetry, sampleRatioFromEnv, shopTelemetry } from '../shop-telemetry.js';

/** A service process's shared parts. */
export interface ServiceRuntime {
  /** `shop.<role>`: the service name in traces and metrics. */
  service: string;
  /** The control plane's URLs (PEAK_SERVER, comma-separated), in order of preference. */
  controlPlane: readonly string[];
  /** The shop database (schema `shop`, order shard ds0): SHOP_DB. */
  shopDb: string;
  /** A pool on the shop database; 8 connections, opened before the service registers. */
  pool: pg.Pool;
  registry: HttpRegistry;
  guard: Guard;
  telemetry: ShopTelemetry;
  tracer: Tracer;
  /** The RPC server (tracing and guard filters on); started by {@link ready} if it has services. */
  rpc: RpcServer;
  /** Reads a required variable, or stops the process with a line saying which one is missing. */
  env(name: string): string;
  /** Adds a step to the stop, run after the RPC server has drained, in the order added. */
  onStop(step: () => Promise<unknown> | unknown): void;
  /**
   * Warms the pool, starts (and so registers) the RPC server when `serve` is true, and
   * prints the ready line the chain waits for.
   */
  ready(options: { serve: boolean }): Promise<void>;
}

function requiredEnv(name: string, usage: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`${usage}: ${name} is not set (the chain sets it; see chain.ts)`);
    process.exit(2);
  }
  return value;
}

/** How long a graceful stop may take before the process exits anyway. */
const STOP_BOUND_MS = 20_000;

/** The shared parts of service `role`'s process. */
export function serviceRuntime(role: string): ServiceRuntime {
  const usage = `shop.${role}`;
  const controlPlane = requiredEnv('PEAK_SERVER', usage).split(',');
  const shopDb = requiredEnv('SHOP_DB', usage);
  // statement_timeout bounds how late an order can be written (the compensation sweep relies on it).
  // min: the 8 opened before registering stay open (pg closes idle ones after 10 s otherwise,
  // and a rate step would open them again under load: a fork and SCRAM each).
  const pool = new pg.Pool({ connectionString: shopDb, max: 8, min: 8, statement_timeout: 2000 });
  pool.on('error', () => undefined);
  const registry = new HttpRegistry({ servers: controlPlane, leaseMs: 6000 });
  const guard = new Guard();
  const telemetry = shopTelemetry(`shop.${role}`, controlPlane, guard, sampleRatioFromEnv());
  const rpc = new RpcServer({
    registry,
    // Under a supervisor (--scale-demo): the id and starting weight it gives.
    ...(process.env.PEAK_INSTANCE_ID === undefined
      ? {}
      : {
          instanceId: process.env.PEAK_INSTANCE_ID,
          weight: Number(process.env.PEAK_WEIGHT ?? 100),
        }),
    drainTimeoutMs: 5000,
    maxInFlight: 2000,
    filters: [rpcTracingFilter(telemetry.tracer), guardRpcFilter(guard)],
  });
  const steps: (() => Promise<unknown> | unknown)[] = [];
  let serving = false;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Bounded: a stop whose control plane or database is gone (the shop killed with
    // SIGKILL) must not leave this process behind; one was found alive 17 min later.
    setTimeout(() => process.exit(1), STOP_BOUND_MS).unref();
    const run = async () => {
      if (serving) await rpc.stop();
      for (const step of steps) await step();
      await telemetry.close();
      await registry.close();
      await pool.end();
      guard.close();
    };
    run().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // SIGTERM from the chain, or SIGINT when Ctrl-C in a terminal reaches the whole process
  // group: either way deregister, drain and close, once.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The shop's main process died without stopping the chain (kill -9): stop too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1000).unref();
  return {
    service: `shop.${role}`,
    controlPlane,
    shopDb,
    pool,
    registry,
    guard,
    telemetry,
    tracer: telemetry.tracer,
    rpc,
    env: (name) => requiredEnv(name, usage),
    onStop: (step) => {
      steps.push(step);
    },
    ready: async ({ serve }) => {
      // Connections are opened before the service registers, not by the sale's first calls.
      await warmPool(pool, 8);
      if (!serve) {
        console.log(JSON.stringify({ event: 'ready', role }));
        return;
      }
      serving = true;
      const { port } = await rpc.start();
      console.log(JSON.stringify({ event: 'ready', role, port, instanceId: rpc.instanceId }));
    },
  };
}

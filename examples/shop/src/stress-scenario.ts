/**
 * The shop's stress scenario: stress buyers (ids from {@link STRESS_BUYER_BASE} up, so their
 * rows are told apart from real ones) buy through the gateway's buy route at a constant
 * arrival rate, every request carrying the stress flag (`peakware/stress` sets it, and the
 * run's id as baggage). The chain sends their orders to shadow tables, their events to the
 * shadow topic, their stock deductions to the shadow stock and their points to the shadow
 * points table. Sold out (409) and refused by the flash-sale guard (429) are answers, not
 * failures: the shadow sale sells out like the real one.
 *
 * `--stress-beside` runs it beside the flash sale (stress-beside.ts); `peak stress run
 * examples/shop/dist/stress-scenario.js` runs it against a running shop, reading the gateway
 * and key from SHOP_GATEWAY and SHOP_API_KEY (the shop prints both), rate and seconds from
 * SHOP_STRESS_RATE and SHOP_STRESS_SECONDS.
 */
import { UsageError } from 'peakware/core';
import { constantRate, defineScenario, httpStep, type Scenario } from 'peakware/stress';

/** Stress buyers' ids start above this: real buyers never reach it. */
export const STRESS_BUYER_BASE = 900_000_000;

/** The SQL condition true of stress buyers' rows (orders, points). */
export const STRESS_ROWS = `user_id > ${STRESS_BUYER_BASE}`;

/** What the stress buys got, by answer. */
export interface StressOutcomes {
  placed: number;
  soldOut: number;
  blocked: number;
  /** Ids of the orders placed (for the isolation check of the stock). */
  orderIds: string[];
}

/** How the scenario buys. */
export interface ShopStressOptions {
  gatewayUrl: string;
  /** The buyers' API key (`x-peak-api-key`). */
  apiKey: string;
  sku: string;
  /** Buys per second. */
  rate: number;
  seconds: number;
  /** Filled as answers come (default: a tally of its own). */
  outcomes?: StressOutcomes;
}

/** A fresh tally. */
export function stressOutcomes(): StressOutcomes {
  return { placed: 0, soldOut: 0, blocked: 0, orderIds: [] };
}

/** The scenario: one step, `POST /api/buy` as stress buyer 900000001, 900000002, ... */
export function shopStressScenario(options: ShopStressOptions): Scenario {
  const outcomes = options.outcomes ?? stressOutcomes();
  return defineScenario({
    name: 'shop-buy',
    target: options.gatewayUrl.replace(/\/$/, ''),
    load: constantRate(options.rate, options.seconds),
    maxDurationS: options.seconds + 15,
    timeoutMs: 5000,
    steps: [
      httpStep({
        name: 'buy',
        path: '/api/buy',
        headers: { 'x-peak-api-key': options.apiKey },
        json: (it) => ({ userId: STRESS_BUYER_BASE + 1 + it.index, sku: options.sku, qty: 1 }),
        expect: [200, 409, 429],
        check: (res) => {
          if (res.status === 409) outcomes.soldOut++;
          else if (res.status === 429) outcomes.blocked++;
          else {
            const { orderId } = res.json() as { orderId?: string };
            if (orderId === undefined) return 'placed without an order id';
            outcomes.placed++;
            outcomes.orderIds.push(orderId);
          }
          return true;
        },
      }),
    ],
  });
}

/** For `peak stress run`: the scenario against the shop named by the environment. */
export default function scenarioFromEnv(): Scenario {
  const need = (name: string) => {
    const v = process.env[name];
    if (v === undefined || v === '')
      throw new UsageError(`${name} is not set (the shop prints the gateway URL and its API key)`);
    return v;
  };
  return shopStressScenario({
    gatewayUrl: need('SHOP_GATEWAY'),
    apiKey: need('SHOP_API_KEY'),
    sku: process.env.SHOP_STRESS_SKU ?? 'flash-phone',
    rate: Number(process.env.SHOP_STRESS_RATE ?? 20),
    seconds: Number(process.env.SHOP_STRESS_SECONDS ?? 10),
  });
}

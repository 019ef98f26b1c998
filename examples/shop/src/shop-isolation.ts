/**
 * The shop's isolation check after a stress run: `peakware/stress`'s `checkIsolation` over
 * the order tables (every physical table, its shadow beside it) and the real topics, plus the
 * shop's own places: stress buyers' points in `shop.points` and stress orders' deductions in
 * the real stock. And the planted leak the tests use to prove the check can fail.
 */
import { createContext, runWithContext } from 'peakware/core';
import { GeneIdGenerator } from 'peakware/data';
import { checkIsolation, type IsolationLeak, type IsolationReport } from 'peakware/stress';
import type { Chain } from './chain.js';
import { SHADOW_POINTS_TABLE } from './shadow-points.js';
import { SHADOW_STOCK_SCHEMA } from './shadow-stock.js';
import { STRESS_BUYER_BASE, STRESS_ROWS } from './stress-scenario.js';

const stressContext = () => createContext({ stress: true });

/**
 * The isolation check: `peakware/stress`'s over the order tables and the real topics, plus
 * the shop's own places: stress buyers' points in `shop.points`, stress orders' deductions in
 * the real stock's log (with Redis, after a reconcile has brought it level with Redis).
 */
export async function shopIsolationCheck(
  chain: Chain,
  runId: string,
  sinceMs: number,
  sku: string,
  answeredIds: string[],
): Promise<IsolationReport> {
  // Every stress order id known: answered to the scenario, written to the shadow order
  // tables, or holding shadow stock (a deduction whose order was never written).
  const shadowOrders = await runWithContext(stressContext(), () =>
    chain.orders.query<{ order_id: string }>('SELECT order_id FROM orders WHERE sku = $1', [sku]),
  );
  const shadowDeductions = await chain.shopPool.query<{ order_id: string }>(
    `SELECT order_id FROM ${SHADOW_STOCK_SCHEMA}.deductions WHERE sku = $1`,
    [sku],
  );
  const stressOrderIds = [
    ...new Set([
      ...answeredIds,
      ...shadowOrders.rows.map((r) => String(r.order_id)),
      ...shadowDeductions.rows.map((r) => r.order_id),
    ]),
  ];
  const report = await checkIsolation(
    { runId, sinceMs: sinceMs - 1000 },
    { tables: [{ table: 'orders', where: STRESS_ROWS }] },
    {
      db: chain.orders,
      messages: (id, since) => chain.admin.stress.leakedMessages(id, since),
    },
  );
  const leaks: IsolationLeak[] = [];
  const count = async (sql: string, params: unknown[]) =>
    Number((await chain.shopPool.query<{ n: string }>(sql, params)).rows[0]?.n ?? 0);
  const realPoints = await count(
    `SELECT count(*)::text AS n FROM shop.points WHERE ${STRESS_ROWS}`,
    [],
  );
  const shadowPoints = await count(
    `SELECT count(*)::text AS n FROM ${SHADOW_POINTS_TABLE} WHERE ${STRESS_ROWS}`,
    [],
  );
  report.checked.tables.push({
    where: 'ds0.shop.points (points)',
    realRows: realPoints,
    shadowRows: shadowPoints,
  });
  if (realPoints > 0)
    leaks.push({ kind: 'table', where: 'ds0.shop.points (points)', count: realPoints });
  // With Redis, the real stock's books first settle (reconcile writes to PostgreSQL every
  // deduction Redis holds and PostgreSQL lacks), so the log below also stands for Redis.
  await chain.stock.settle(sku);
  const realDeductions = await count(
    'SELECT count(*)::text AS n FROM peak_stock.deductions WHERE sku = $1 AND order_id = ANY($2::text[])',
    [sku, stressOrderIds],
  );
  report.checked.tables.push({
    where: 'ds0.peak_stock.deductions (stock)',
    realRows: realDeductions,
    shadowRows: null,
  });
  if (realDeductions > 0)
    leaks.push({
      kind: 'table',
      where: 'ds0.peak_stock.deductions (stock)',
      count: realDeductions,
    });
  report.leaks.push(...leaks);
  report.ok = report.leaks.length === 0;
  return report;
}

/**
 * Plants one leak: a stress buyer's order written in a fresh context, as a write that lost
 * the caller's context (a lost `await`, a new context) would, so the data layer routes it
 * to the real table. Checks again, then removes the planted row.
 */
export async function withPlantedLeak(
  chain: Chain,
  check: () => Promise<IsolationReport>,
): Promise<IsolationReport> {
  const buyer = STRESS_BUYER_BASE + 999_999;
  const sql =
    'INSERT INTO orders (order_id, user_id, sku, qty, amount_cents) VALUES ($1, $2, $3, $4, $5)';
  const orderId = new GeneIdGenerator({
    layout: chain.orders.layout,
    table: 'orders',
    workerId: 63,
  })
    .next(buyer)
    .toString();
  await runWithContext(stressContext(), () =>
    // The leak: the write runs in a fresh context, so the stress flag is lost.
    runWithContext(createContext(), () =>
      chain.orders.query(sql, [orderId, buyer, 'stress-leak', 1, 0]),
    ),
  );
  try {
    return await check();
  } finally {
    await chain.orders.query('DELETE FROM orders WHERE user_id = $1 AND sku = $2', [
      buyer,
      'stress-leak',
    ]);
  }
}

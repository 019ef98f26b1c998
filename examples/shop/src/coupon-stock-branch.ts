/**
 * The stock branch of a coupon order, served by each inventory process beside its plain
 * `deduct`: try deducts (refused for good when sold out), confirm keeps the deduction,
 * cancel gives it back. Each operation runs in the txn barrier on the shop database (where
 * the stock's tables are), so a repeated try, a cancel before its try (empty compensation)
 * and a try after its cancel (hanging) are filtered; the stock engine is idempotent by order
 * id besides (a repeated deduct deducts once, a release releases once).
 */
import type { StockEngine } from 'peakware/cache';
import { BranchRefusedError, barrier } from 'peakware/txn';
import { stockBranchService } from './coupon-catalog.js';
import type { ServiceRuntime } from './services/service-runtime.js';

/** Adds `shop.inventory-tcc` to the inventory process's RPC server. */
export function serveStockBranch(rt: ServiceRuntime, engine: StockEngine): void {
  rt.rpc.addService(stockBranchService, {
    async deduct({ orderId, sku, qty }) {
      const left = await barrier(rt.pool, undefined, async () => {
        const r = await engine.deduct(sku, orderId, qty);
        // Refused for good: the coordinator cancels the other branches at once.
        if (!r.ok) throw new BranchRefusedError(`${sku} is sold out`, { sku, orderId });
        return r.left;
      });
      return left === undefined ? { ok: false, left: -1 } : { ok: true, left };
    },
    async keep() {
      const r = await barrier(rt.pool, undefined, async () => true);
      return { ok: r === true };
    },
    async restore({ orderId, sku }) {
      const r = await barrier(rt.pool, undefined, async () => {
        await engine.release(sku, orderId);
        return true;
      });
      return { ok: r === true };
    },
  });
}

/**
 * The --scale-demo's inventory v2: the same service, deliberately slower (80 ms more per
 * deduct), started by a gray release that the analysis should roll back on its p99.
 */
process.env.SHOP_INVENTORY_SLOW_MS = '80';
await import('./inventory-service.js');

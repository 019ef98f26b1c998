/**
 * An order-service instance started by the --scale-demo's supervisor: the same service,
 * with a worker id of its own for its order ids (32 + its slot; the chain's processes use
 * 1-5), read from the instance id the supervisor gives it (`<service>-<version>-<slot>`).
 */
const slot = Number(process.env.PEAK_INSTANCE_ID?.split('-').at(-1));
process.env.WORKER_ID = String(32 + (Number.isInteger(slot) ? slot % 32 : process.pid % 32));
await import('./order-service.js');

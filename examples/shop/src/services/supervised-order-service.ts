/**
 * An order-service instance as the chain's supervisor starts it (every order process, the
 * --scale-demo's extra ones too): the same service, with a worker id of its own for its
 * order ids (32 + its slot, so two live instances never share one), read from the instance
 * id the supervisor gives it (`<service>-<version>-<slot>`).
 */
const slot = Number(process.env.PEAK_INSTANCE_ID?.split('-').at(-1));
process.env.WORKER_ID = String(32 + (Number.isInteger(slot) ? slot % 32 : process.pid % 32));
await import('./order-service.js');

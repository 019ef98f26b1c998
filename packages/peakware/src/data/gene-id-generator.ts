/**
 * Gene ids (Mogujie's TSharding idea): a time-ordered 64-bit id whose low bits carry the
 * "gene" of another key, the bits that decide that key's shard. An order id made with the
 * buyer id's gene routes to the buyer's shard, so "order by id" and "orders of buyer"
 * both stay single-shard queries without a lookup table.
 *
 * Layout (63 bits, positive bigint): 41 bits of ms since the Peakware epoch, `workerBits`
 * of worker id, `sequenceBits` of per-ms sequence, `geneBits` of gene; the three widths
 * after the timestamp add up to 22 (the same total as core's `IdGenerator`).
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { PEAK_EPOCH_MS } from '../core/id-generator.js';
import type { ShardValue } from './sharding-algorithm.js';
import type { ShardingLayout } from './sharding-layout.js';

/** Options for {@link GeneIdGenerator}. */
export interface GeneIdGeneratorOptions {
  /** The layout: the gene comes from this table's algorithm, `geneBits` from the layout. */
  layout: ShardingLayout;
  /** The sharded table whose sharding key donates the gene (e.g. `t_order`). */
  table: string;
  /** This process's worker id. Default 0. */
  workerId?: number;
  /** Bits of the worker id. Default 6 (64 workers). */
  workerBits?: number;
  /** The clock, epoch ms. Default `Date.now`. */
  clock?: () => number;
}

const TOTAL_LOW_BITS = 22;

/** Makes gene ids for one sharded table. */
export class GeneIdGenerator {
  /** Bits of the gene (from the layout). */
  readonly geneBits: number;
  readonly #workerBits: number;
  readonly #sequenceBits: number;
  readonly #workerId: number;
  readonly #clock: () => number;
  readonly #gene: (value: ShardValue) => number;
  #lastMs = -1;
  #sequence = 0;

  constructor(options: GeneIdGeneratorOptions) {
    const table = options.layout.tables.get(options.table);
    if (table === undefined) {
      throw new PeakError(
        ErrorCodes.DATA_LAYOUT,
        `gene ids: ${options.table} is not a sharded table of the layout`,
        {
          details: { input: 'table' },
        },
      );
    }
    const alg = table.algorithm;
    if (alg.gene === undefined || alg.shardOfGene === undefined) {
      throw new PeakError(
        ErrorCodes.DATA_LAYOUT,
        `gene ids: ${table.name} uses the ${alg.type} algorithm, which has no gene; use mod, hash-mod or consistent-hash`,
        { details: { input: 'table' } },
      );
    }
    this.geneBits = options.layout.geneBits;
    this.#workerBits = options.workerBits ?? 6;
    this.#sequenceBits = TOTAL_LOW_BITS - this.geneBits - this.#workerBits;
    if (this.#sequenceBits < 4) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `gene ids: ${this.geneBits} gene bits + ${this.#workerBits} worker bits leave ${this.#sequenceBits} sequence bits; keep at least 4 (lower workerBits)`,
        { details: { input: 'workerBits' } },
      );
    }
    const workerId = options.workerId ?? 0;
    if (!Number.isInteger(workerId) || workerId < 0 || workerId >= 2 ** this.#workerBits) {
      throw new PeakError(
        ErrorCodes.ID_GENERATOR,
        `gene ids: workerId must be an integer from 0 to ${2 ** this.#workerBits - 1}, got ${workerId}`,
        { details: { input: 'workerId' } },
      );
    }
    this.#workerId = workerId;
    this.#clock = options.clock ?? Date.now;
    const bits = this.geneBits;
    this.#gene = (value) => alg.gene!(value, bits);
  }

  /** The gene a key donates (its low bits decide its shard). */
  geneOf(key: ShardValue): number {
    return this.#gene(key);
  }

  /** A new id carrying the gene of `key` (e.g. the buyer id). */
  next(key: ShardValue): bigint {
    const gene = this.#gene(key);
    let ms = this.#clock() - PEAK_EPOCH_MS;
    if (ms <= this.#lastMs) {
      ms = this.#lastMs;
      this.#sequence++;
      if (this.#sequence >= 2 ** this.#sequenceBits) {
        ms++;
        this.#sequence = 0;
      }
    } else {
      this.#sequence = 0;
    }
    if (ms < 0 || ms >= 2 ** 41) {
      throw new PeakError(
        ErrorCodes.ID_GENERATOR,
        'gene ids: the clock is outside the id range (2024 to 2093)',
      );
    }
    this.#lastMs = ms;
    return (
      (BigInt(ms) << BigInt(TOTAL_LOW_BITS)) |
      (BigInt(this.#workerId) << BigInt(this.#sequenceBits + this.geneBits)) |
      (BigInt(this.#sequence) << BigInt(this.geneBits)) |
      BigInt(gene)
    );
  }

  /** The gene inside an id. */
  geneOfId(id: bigint | string): number {
    return Number(BigInt(id) & BigInt(2 ** this.geneBits - 1));
  }

  /** The creation time (epoch ms) inside an id. */
  timestampOf(id: bigint | string): number {
    return Number(BigInt(id) >> BigInt(TOTAL_LOW_BITS)) + PEAK_EPOCH_MS;
  }
}

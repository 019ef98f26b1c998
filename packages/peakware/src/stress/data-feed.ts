/**
 * Test data for scenarios: rows from a CSV file (first line: the column names; fields may
 * be double-quoted, `""` inside quotes is one quote) or a JSON file (an array of objects),
 * handed to iterations in turn, so each iteration of a run gets the next row and the rows
 * repeat from the top when they run out.
 */
import { readFile } from 'node:fs/promises';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** One row of test data. */
export type DataRow = Readonly<Record<string, unknown>>;

/** Rows handed out in turn. */
export class DataFeed {
  readonly rows: readonly DataRow[];
  #next = 0;

  constructor(rows: readonly DataRow[]) {
    if (rows.length === 0)
      throw new PeakError(ErrorCodes.STRESS_INVALID, 'a data feed needs at least one row', {
        details: { input: 'data' },
      });
    this.rows = rows;
  }

  /** The next row (the first again after the last). */
  next(): DataRow {
    const row = this.rows[this.#next]!;
    this.#next = (this.#next + 1) % this.rows.length;
    return row;
  }
}

/** Parses CSV text: a header line, then one row a line. */
export function parseCsv(text: string): DataRow[] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(field);
      if (record.length > 1 || record[0] !== '') records.push(record);
      record = [];
      field = '';
    } else field += ch;
  }
  record.push(field);
  if (record.length > 1 || record[0] !== '') records.push(record);
  const [header, ...rows] = records;
  if (header === undefined) return [];
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), r[i] ?? ''])));
}

/** Reads a CSV or JSON data file (by its extension) into a feed. */
export async function loadDataFile(file: string): Promise<DataFeed> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PeakError(
      ErrorCodes.STRESS_INVALID,
      `cannot read the data file ${file}: ${(err as Error).message}`,
      { details: { input: 'data' }, cause: err },
    );
  }
  if (file.endsWith('.json')) {
    let rows: unknown;
    try {
      rows = JSON.parse(text);
    } catch (err) {
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        `${file} is not JSON: ${(err as Error).message}`,
        {
          details: { input: 'data' },
        },
      );
    }
    if (!Array.isArray(rows) || rows.some((r) => typeof r !== 'object' || r === null))
      throw new PeakError(ErrorCodes.STRESS_INVALID, `${file} must hold a JSON array of objects`, {
        details: { input: 'data' },
      });
    return new DataFeed(rows as DataRow[]);
  }
  if (file.endsWith('.csv')) return new DataFeed(parseCsv(text));
  throw new PeakError(ErrorCodes.STRESS_INVALID, `data files are .csv or .json, got ${file}`, {
    details: { input: 'data' },
  });
}

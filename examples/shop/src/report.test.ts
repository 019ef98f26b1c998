/** A failed capacity step's lines: when it began (UTC) and what the machine did each second. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MachineSecond, StepFigures } from './capacity.js';
import { stepLine } from './report.js';

const second = (chain: number, iowait: number): MachineSecond => ({
  chain,
  byKind: { order: chain / 2, gateway: chain / 2 },
  loadGenerator: 0.1,
  others: 0,
  irq: 0.05,
  steal: 0,
  iowait,
});

const step = (passed: boolean): StepFigures => ({
  rate: 2500,
  placedPerSecond: 2500,
  load: {
    rate: 2500,
    seconds: 3,
    scheduled: 7500,
    placed: 7500,
    soldOut: 0,
    blocked: 0,
    errors: 0,
    latencyMs: { p50: 9.7, p90: 40, p99: 188, max: 240 },
    bySecond: [
      { p99: 40, max: 50 },
      { p99: 221, max: 240 },
      { p99: 35, max: 44 },
    ],
    startedAt: Date.UTC(2026, 11, 7, 6, 28, 15, 400),
    senderLagMs: 1,
    cpuUsPerBuy: 40,
    errorSamples: [],
  },
  passed,
  cpuUsPerOrder: { order: 150, gateway: 120, total: 270 },
  syscallsPerOrder: { order: 4, total: 4 },
  machineBusy: 0.85,
  stagesMs: {},
  books: { consistent: true, orders: 7500, pointsAwarded: 7500, oversold: 0 },
  machineBySecond: [second(1.7, 0.01), second(1.61, 0.08), second(1.72, 0)],
});

test('a failed step prints its UTC start, the cores and iowait by second, and its worst second', () => {
  const lines = stepLine(step(false)).split('\n');
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.match(lines[0]!, /2500\/s .* FAIL /);
  assert.match(lines[1]!, /p99 by second from 06:28:15 UTC \(ms\): 40 221 35$/);
  assert.match(lines[2]!, /chain 1\.7 1\.6 1\.7 \| .* \| iowait 0\.0 0\.1 0\.0$/);
  assert.match(lines[3]!, /second 2 \(p99 221 ms\), in cores: chain 1\.61 .* iowait 0\.08$/);
});

test('a passed step is one line', () => {
  assert.equal(stepLine(step(true)).split('\n').length, 1);
});

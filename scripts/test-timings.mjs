// A reporter for Node's test runner that records how long each test file took: one JSON line
// each time one of a file's top-level tests (or suites) ends, so an interrupted run keeps
// what it had, with the file's path, the summed duration of its top-level tests so far (ms,
// as the file's own process measured them: side by side with other files the events reach
// the reporter late, so their arrival times say nothing) and whether one failed. A file's
// last line is its total. scripts/run-tests.mjs adds it when PEAK_TEST_TIMINGS names a file
// and prints the slowest files after the run (`PEAK_TEST_TIMINGS=/tmp/timings.jsonl npm test`).
export default async function* timings(source) {
  const files = new Map();
  for await (const event of source) {
    const data = event.data;
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    if (data.nesting !== 0 || typeof data.file !== 'string') continue;
    const f = files.get(data.file) ?? { ms: 0, failed: false };
    files.set(data.file, f);
    f.ms += data.details?.duration_ms ?? 0;
    if (event.type === 'test:fail') f.failed = true;
    yield `${JSON.stringify({ file: data.file, ms: Math.round(f.ms), failed: f.failed })}\n`;
  }
}

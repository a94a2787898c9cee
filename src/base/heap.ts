/**
 * One compacting garbage collection, for the moment a burst of start-up work is over.
 *
 * Listing every cached object and evaluating every Certificate allocates far more than the
 * caches keep; V8 collects that garbage in time but keeps the pages, and its memory reducer
 * gives them back late or never (a controller synced over 10,000 Certificates still held about
 * 20 MB of it a minute later). V8's "last resort" collection compacts the heap and returns the
 * empty pages at once, so the pod's resident memory is its live data. It pauses the process
 * (about 120 ms at 10,000 Certificates), so it runs only after such a burst: the caches' lists,
 * and each initial pass as leader.
 *
 * It needs Node's `--expose-gc`, which the chart's `nodeOptions` set; without it nothing happens.
 */
type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export interface Compaction {
  rssBeforeMB: number;
  rssAfterMB: number;
  ms: number;
}

export function compactHeap(): Compaction | undefined {
  const gc = (globalThis as { gc?: GcFunction }).gc;
  if (typeof gc !== 'function') return undefined;
  const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
  const before = process.memoryUsage.rss();
  const started = performance.now();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return { rssBeforeMB: mb(before), rssAfterMB: mb(process.memoryUsage.rss()), ms: Math.round(performance.now() - started) };
}

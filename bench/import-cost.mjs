/**
 * What importing costs: RSS and V8 heap half a second after importing the
 * given modules, in a fresh process.
 *
 *   node bench/import-cost.mjs                                    # nothing: Node itself
 *   node bench/import-cost.mjs @kubernetes/client-node
 *   node bench/import-cost.mjs reflect-metadata,./src/cli/controller.ts
 *   node bench/import-cost.mjs reflect-metadata,./dist/cli/controller.js   # as the image runs it, after npm run build
 *
 * Plain JavaScript on purpose: a .ts entry point would load Node's type
 * stripper before the first import and count it against every module.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const specs = (process.argv[2] ?? '').split(',').filter(Boolean);
for (const spec of specs) await import(spec.startsWith('.') ? pathToFileURL(resolve(spec)).href : spec);
await new Promise((r) => setTimeout(r, 500));
const m = process.memoryUsage();
const mb = (n) => Math.round(n / 1e5) / 10;
console.log(JSON.stringify({ imports: specs, rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external) }));

#!/usr/bin/env node
// Node >= 22.18 strips TypeScript types natively; the CLI runs from source. The image runs the
// compiled dist/ instead (scripts/entry.ts says which entry runs where).
import '../src/cli/main.ts';

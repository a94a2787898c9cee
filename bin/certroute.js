#!/usr/bin/env node
// Node >= 22.18 strips TypeScript types natively; the CLI runs from source.
import '../src/cli/main.ts';

/**
 * Reading Pebble's own view: its current root (new at every start) and the
 * orders it holds, so tests can prove "no duplicate order at the CA".
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { StackEnv } from '../env/stack.ts';

function agent(env: StackEnv): Agent {
  return new Agent({ connect: { ca: readFileSync(env.pebble.tlsCa) } });
}

export async function pebbleRoot(env: StackEnv): Promise<string> {
  const res = await request(`${env.pebble.management}/roots/0`, { dispatcher: agent(env) });
  if (res.statusCode !== 200) throw new Error(`Pebble /roots/0 answered ${res.statusCode}`);
  return res.body.text();
}

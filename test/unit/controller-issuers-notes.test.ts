import test from 'ava';
import { unsupportedNote } from '../../src/controller/issuers.ts';
import { SolverRegistry } from '../../src/solvers/registry.ts';
import { dns01 } from '../../src/solvers/dns01.ts';
import type { SolverDeps } from '../../src/solvers/solver.ts';

// Only the registry's membership is read: no solver is built with these dependencies.
const withDns01 = new SolverRegistry({} as SolverDeps, [dns01]);
const base = { server: 'https://acme.example/dir', privateKeySecretRef: { name: 'account' } };

test('a Gateway API solver is accepted, and the Issuer says which of its fields have no effect', (t) => {
  const note = unsupportedNote({ ...base, solvers: [{ http01: { gatewayHTTPRoute: { parentRefs: [{ name: 'traefik' }], serviceType: 'ClusterIP' } } }] }, withDns01);
  t.is(note, "; note: solvers[0].http01.gatewayHTTPRoute.parentRefs/serviceType has no effect (certroute answers through its one challenge HTTPRoute, --wiring=gateway, or Traefik's route, and creates no HTTPRoute or pod per challenge)");
});

test('an empty Gateway API solver, like http01: {}, needs no note', (t) => {
  t.is(unsupportedNote({ ...base, solvers: [{ http01: { gatewayHTTPRoute: {} } }] }, withDns01), '');
});

test('solver Ingress tuning is named as having no effect, beside a dns01 solver that needs no note', (t) => {
  const note = unsupportedNote({ ...base, solvers: [{ http01: { ingress: { name: 'web' } } }, { dns01: { cloudflare: { apiTokenSecretRef: { name: 'cf', key: 'token' } } } }] }, withDns01);
  t.is(note, '; note: solvers[0].http01.ingress.name has no effect (certroute creates no solver Ingress or pod)');
});

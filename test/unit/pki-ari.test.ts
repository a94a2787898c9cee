import test from 'ava';
import { ariCertificateId, inWindow, pickInWindow } from '../../src/pki/ari.ts';
import { certificateRenewalTime, renewalTime } from '../../src/pki/renewal.ts';
import type { Certificate } from '../../src/api/types.ts';

test('the ARI certificate identifier is the RFC 9773 example: AKI and serial, base64url without padding', (t) => {
  // RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
  t.is(ariCertificateId('69885b6b87464041e1b37b847ba0ae2cde01c8d4', '0087654321'), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

test('a serial whose top bit is set keeps its leading zero byte, however the hex was written', (t) => {
  t.is(ariCertificateId('69885b6b87464041e1b37b847ba0ae2cde01c8d4', '87654321'), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  t.is(ariCertificateId('01', '0000007f'), 'AQ.fw');
  t.is(ariCertificateId('01', 'abc'), 'AQ.Crw');
});

test('the moment picked lies inside the window, and the random draw spreads it over the whole window', (t) => {
  const start = new Date('2026-12-01T00:00:00Z');
  const end = new Date('2026-12-02T00:00:00Z');
  t.deepEqual(pickInWindow(start, end, () => 0), start);
  t.deepEqual(pickInWindow(start, end, (limit) => limit - 1), new Date(end.getTime() - 1000));
  for (let i = 0; i < 50; i++) t.true(inWindow(pickInWindow(start, end), start, end));
});

const issued = { notBefore: new Date('2026-12-01T00:00:00Z'), notAfter: new Date('2026-12-07T16:00:00Z') };

test('a 160-hour certificate renews after two thirds of its own lifetime', (t) => {
  t.deepEqual(renewalTime(issued), new Date(issued.notAfter.getTime() - (160 * 3600_000) / 3 - ((160 * 3600_000) / 3) % 1000));
});

test('the ARI moment replaces the one-third default, even when it is later', (t) => {
  const ariSelected = new Date('2026-12-06T00:00:00Z');
  t.deepEqual(renewalTime({ ...issued, ariSelected }), ariSelected);
});

test('renewBefore wins over the ARI moment when it is earlier, and loses when it is later', (t) => {
  const ariSelected = new Date('2026-12-05T00:00:00Z');
  t.deepEqual(renewalTime({ ...issued, ariSelected, renewBefore: '100h' }), new Date('2026-12-03T12:00:00Z'));
  t.deepEqual(renewalTime({ ...issued, ariSelected, renewBefore: '1h' }), ariSelected);
  t.deepEqual(renewalTime({ ...issued, ariSelected, renewBeforePercentage: 90 }), new Date(issued.notAfter.getTime() - 144 * 3600_000));
});

test('a window fetched for another certificate (the one before a renewal) is not used', (t) => {
  const cert = {
    metadata: { name: 'web' },
    spec: { secretName: 'web-tls', issuerRef: { name: 'le' } },
    status: { acme: { ari: { certID: 'old.id', suggestedWindow: { start: '2026-12-01T01:00:00Z', end: '2026-12-01T02:00:00Z' }, selectedTime: '2026-12-01T01:30:00Z' } } },
  } as Certificate;
  t.deepEqual(certificateRenewalTime(cert, { ...issued, renewalInfoId: 'new.id' }), renewalTime(issued));
  t.deepEqual(certificateRenewalTime(cert, { ...issued, renewalInfoId: 'old.id' }), new Date('2026-12-01T01:30:00Z'));
});

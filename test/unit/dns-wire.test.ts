import test from 'ava';
import { createHmac } from 'node:crypto';
import * as packet from 'dns-packet';
import { updateMessage } from '../../src/dns/rfc2136.ts';
import { sign, tsigError } from '../../src/dns/tsig.ts';
import { canonicalName, parseServer } from '../../src/dns/wire.ts';

const servers: Array<[string, { host: string; port: number }]> = [
  ['127.0.0.1', { host: '127.0.0.1', port: 53 }],
  ['127.0.0.1:5353', { host: '127.0.0.1', port: 5353 }],
  ['ns1.example.com:53', { host: 'ns1.example.com', port: 53 }],
  ['[2001:db8::1]:5353', { host: '2001:db8::1', port: 5353 }],
  ['2001:db8::1', { host: '2001:db8::1', port: 53 }],
];
for (const [text, expected] of servers) {
  test(`the nameserver ${text} is read as cert-manager's rfc2136.nameserver reads it`, (t) => {
    t.deepEqual(parseServer(text), expected);
  });
}

test('a nameserver with a port that is not a number is refused with the forms that work', (t) => {
  t.throws(() => parseServer('127.0.0.1:dns'), { message: /host, host:port or \[IPv6\]:port/ });
});

test('a delete update removes one TXT value: class NONE and TTL 0 on that record, as RFC 2136 §2.5.4 writes it', (t) => {
  const decoded = packet.decode(updateMessage('example.test', '_acme-challenge.a.example.test', 'value-1', { op: 'delete' })) as packet.DecodedPacket & { opcode: string };
  t.is(decoded.opcode, 'UPDATE');
  t.like(decoded.questions?.[0], { name: 'example.test', type: 'SOA' });
  const [record] = decoded.authorities ?? [];
  t.like(record, { name: '_acme-challenge.a.example.test', type: 'TXT', class: 'UNKNOWN_254', ttl: 0 });
  t.deepEqual((record as packet.TxtAnswer).data, [Buffer.from('value-1')]);
});

test('an add update puts the value in class IN with its TTL', (t) => {
  const decoded = packet.decode(updateMessage('example.test', '_acme-challenge.example.test', 'v', { op: 'add', ttl: 60 }));
  t.like(decoded.authorities?.[0], { class: 'IN', ttl: 60, type: 'TXT' });
});

test('the TSIG record carries an HMAC over the message and the TSIG variables of RFC 8945 §4.3.3', (t) => {
  const message = updateMessage('example.test', '_acme-challenge.example.test', 'v', { op: 'add', ttl: 60 });
  const secret = Buffer.from('c2VjcmV0LXNlY3JldC1zZWNyZXQ=', 'base64');
  const now = new Date('2026-01-02T03:04:05Z');
  const signed = sign(message, { name: 'Key.Example.', algorithm: 'HMACSHA256', secret }, now);
  const decoded = packet.decode(signed);
  const tsig = decoded.additionals?.at(-1) as packet.BufferAnswer;
  t.is(tsig.type, 'TSIG');
  t.is(tsig.class, 'ANY');
  t.is(signed.readUInt16BE(10), 1, 'ARCOUNT counts the TSIG record');
  // Algorithm name, then time signed (48 bits), fudge, MAC size and the MAC.
  const alg = canonicalName('hmac-sha256');
  const time = tsig.data.readUIntBE(alg.length, 6);
  t.is(time, Math.floor(now.getTime() / 1000));
  const macSize = tsig.data.readUInt16BE(alg.length + 8);
  const mac = tsig.data.subarray(alg.length + 10, alg.length + 10 + macSize);
  const variables = Buffer.concat([canonicalName('key.example'), Buffer.from([0, 255, 0, 0, 0, 0]), alg, tsig.data.subarray(alg.length, alg.length + 8), Buffer.from([0, 0, 0, 0])]);
  t.deepEqual(mac, createHmac('sha256', secret).update(message).update(variables).digest());
  t.is(tsig.data.readUInt16BE(alg.length + 10 + macSize), message.readUInt16BE(0), 'the original id is the message id');
});

test('a TSIG error in an answer is named as BIND logs it', (t) => {
  const alg = canonicalName('hmac-sha256');
  const rdata = Buffer.concat([alg, Buffer.alloc(6), Buffer.from([1, 44]), Buffer.from([0, 0]), Buffer.from([0x12, 0x34]), Buffer.from([0, 16]), Buffer.from([0, 0])]);
  t.is(tsigError([{ type: 'TSIG', data: rdata }]), 'BADSIG');
  const ok = Buffer.concat([alg, Buffer.alloc(6), Buffer.from([1, 44]), Buffer.from([0, 0]), Buffer.from([0x12, 0x34]), Buffer.from([0, 0]), Buffer.from([0, 0])]);
  t.is(tsigError([{ type: 'TSIG', data: ok }]), undefined);
});

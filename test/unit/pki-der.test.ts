/**
 * The DER the hot paths read and write themselves (src/pki/der.ts), held to what Node's native
 * parser and OpenSSL make of the same bytes.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { children, encoding, integer, nameAttributes, oid, oidText, readTlv, sequence, stringText, Tag, tbsFields, time, tlv, unsignedInteger } from '../../src/pki/der.ts';

test('an OBJECT IDENTIFIER survives writing and reading, large arcs included', (t) => {
  for (const dotted of ['2.5.29.17', '1.2.840.10045.4.3.2', '1.3.6.1.4.1.11129.2.5.3', '2.999.3', '1.2.840.113549.1.9.14']) {
    const der = oid(dotted);
    t.is(oidText(der, readTlv(der, 0)!), dotted);
  }
  t.is(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
});

test('lengths: short form below 128 bytes, long form above, and a TLV that overruns its parent is refused', (t) => {
  t.is(tlv(0x04, Buffer.alloc(127)).subarray(0, 2).toString('hex'), '047f');
  t.is(tlv(0x04, Buffer.alloc(128)).subarray(0, 3).toString('hex'), '048180');
  t.is(tlv(0x04, Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
  const long = tlv(0x04, Buffer.alloc(300));
  t.deepEqual(readTlv(long, 0), { tag: 0x04, header: 0, start: 4, end: 304 });
  t.is(readTlv(long.subarray(0, 200), 0), undefined);
  t.throws(() => children(Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00]), { tag: 0x30, header: 0, start: 2, end: 5 }), { message: /malformed DER at byte 2/ });
});

test('INTEGERs are minimal and never negative', (t) => {
  t.is(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])).toString('hex'), '02017f');
  t.is(unsignedInteger(Buffer.from([0x80, 0x01])).toString('hex'), '0203008001');
  t.is(integer(0).toString('hex'), '020100');
  t.is(integer(2048).toString('hex'), '02020800');
});

test('times are UTCTime through 2049 and GeneralizedTime from 2050, in whole seconds', (t) => {
  t.is(time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1').slice(2), '491231235959Z');
  t.is(time(new Date('2049-12-31T23:59:59.999Z'))[0], Tag.UTC_TIME);
  t.is(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2), '20500101000000Z');
  t.is(time(new Date('2050-01-01T00:00:00Z'))[0], Tag.GENERALIZED_TIME);
});

test('directory strings of each type read as the text they hold', (t) => {
  const read = (der: Buffer) => stringText(der, readTlv(der, 0)!);
  t.is(read(tlv(Tag.UTF8_STRING, Buffer.from('München', 'utf8'))), 'München');
  t.is(read(tlv(Tag.PRINTABLE_STRING, Buffer.from('Example Org', 'latin1'))), 'Example Org');
  t.is(read(tlv(Tag.BMP_STRING, Buffer.from([0x00, 0x4d, 0x00, 0xfc]))), 'Mü');
  t.is(read(tlv(Tag.UNIVERSAL_STRING, Buffer.from([0, 0, 0, 0x4d, 0, 1, 0xf6, 0x00]))), 'M😀');
  t.is(read(tlv(Tag.T61_STRING, Buffer.from([0x4d, 0xfc]))), 'Mü');
});

test("a certificate's TBS fields and subject read as Node reads them", (t) => {
  // A name and a certificate-shaped structure written here, then parsed back.
  const name = sequence(
    tlv(Tag.SET, sequence(oid('2.5.4.6'), tlv(Tag.PRINTABLE_STRING, Buffer.from('DE')))),
    tlv(Tag.SET, sequence(oid('2.5.4.10'), tlv(Tag.UTF8_STRING, Buffer.from('Zweite'))), sequence(oid('2.5.4.10'), tlv(Tag.UTF8_STRING, Buffer.from('Erste')))),
    tlv(Tag.SET, sequence(oid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from('x.example.com')))),
  );
  const tbs = sequence(tlv(0xa0, integer(2)), integer(1), sequence(oid('1.2.840.10045.4.3.2')), name, sequence(time(new Date(0)), time(new Date(1e12))), name);
  const der = sequence(tbs, sequence(oid('1.2.840.10045.4.3.2')), tlv(Tag.BIT_STRING, Buffer.from([0])));
  const { fields } = tbsFields(der);
  t.is(fields.length, 5, 'the version is not counted');
  t.deepEqual(nameAttributes(der, fields[4]!), [
    { oid: '2.5.4.6', value: 'DE' }, { oid: '2.5.4.10', value: 'Zweite' }, { oid: '2.5.4.10', value: 'Erste' }, { oid: '2.5.4.3', value: 'x.example.com' },
  ]);
  t.deepEqual(Buffer.from(encoding(der, fields[2]!)), name);
  t.throws(() => new X509Certificate(der), undefined, 'and it is no certificate: Node refuses it without a key');
});

import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { connect } from 'node:tls';
import { x509 } from '../../src/pki/x509.ts';
import { ACME_IDENTIFIER_OID, validationCertificate, validationCertificateProblem } from '../../src/pki/acme-tls-alpn.ts';
import { createTlsAlpnResponder, TlsAlpnIndex, tlsAlpnSelfCheck } from '../../src/responder/tls-alpn.ts';
import { challenge, withChallengeState } from '../helpers/builders.ts';
import type { Challenge } from '../../src/api/types.ts';

/** The TLS-ALPN-01 self-check with a deadline no loaded test machine reaches. */
const alpnCheck = (opts: Parameters<typeof tlsAlpnSelfCheck>[0]) => tlsAlpnSelfCheck({ timeoutMs: 120_000, ...opts });

const KEY_AUTH = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI';

function tlsChallenge(name: string, dnsName: string, key = KEY_AUTH, presented = true): Challenge {
  const ch = challenge(name, dnsName, withChallengeState('pending', undefined, { presented }));
  ch.spec.type = 'TLS-ALPN-01';
  ch.spec.key = key;
  return ch;
}

async function responderFor(t: ExecutionContext, ...challenges: Challenge[]): Promise<number> {
  const index = new TlsAlpnIndex();
  for (const ch of challenges) index.upsert(ch);
  const responder = createTlsAlpnResponder({ index, port: 0, host: '127.0.0.1' });
  const port = await responder.listen();
  t.teardown(() => responder.close());
  return port;
}

function handshake(port: number, servername: string, ALPNProtocols?: string[]): Promise<{ alpn: string | false; der?: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ALPNProtocols, rejectUnauthorized: false }, () => {
      resolve({ alpn: socket.alpnProtocol ?? false, der: socket.getPeerCertificate().raw });
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

test('the validation certificate has exactly one dNSName SAN and the critical acmeIdentifier extension holding SHA-256 of the key authorization', async (t) => {
  const { cert } = await validationCertificate('a.test', KEY_AUTH);
  const parsed = new x509.X509Certificate(cert);
  const ext = parsed.getExtension(ACME_IDENTIFIER_OID);
  t.truthy(ext);
  t.true(ext?.critical);
  const digest = createHash('sha256').update(KEY_AUTH).digest();
  t.deepEqual(Buffer.from(ext!.value), Buffer.concat([Buffer.from([0x04, 0x20]), digest]), 'a DER OCTET STRING of the 32-byte digest');
  t.deepEqual(parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => [n.type, n.value]), [['dns', 'a.test']]);
  t.is(validationCertificateProblem(new Uint8Array(parsed.rawData), 'a.test', KEY_AUTH), undefined);
});

test('a validation certificate for another key authorization or another name is judged wrong', async (t) => {
  const der = new Uint8Array(new x509.X509Certificate((await validationCertificate('a.test', KEY_AUTH)).cert).rawData);
  t.regex(validationCertificateProblem(der, 'a.test', `${KEY_AUTH}x`) ?? '', /another key authorization/);
  t.regex(validationCertificateProblem(der, 'b.test', KEY_AUTH) ?? '', /instead of exactly dNSName b\.test/);
});

test('the responder negotiates acme-tls/1 and presents the answer for a presented challenge', async (t) => {
  const port = await responderFor(t, tlsChallenge('ch', 'a.test'));
  const result = await handshake(port, 'a.test', ['acme-tls/1']);
  if ('error' in result) return t.fail(result.error);
  t.is(result.alpn, 'acme-tls/1');
  t.is(validationCertificateProblem(new Uint8Array(result.der!), 'a.test', KEY_AUTH), undefined);
});

test('the responder refuses a handshake that offers only web protocols', async (t) => {
  const port = await responderFor(t, tlsChallenge('ch', 'a.test'));
  t.deepEqual(await handshake(port, 'a.test', ['h2', 'http/1.1']), { error: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' });
});

test('the responder presents nothing for a name with no presented challenge', async (t) => {
  const port = await responderFor(t, tlsChallenge('ch', 'a.test'), tlsChallenge('later', 'b.test', KEY_AUTH, false));
  for (const name of ['c.test', 'b.test']) {
    const result = await handshake(port, name, ['acme-tls/1']);
    t.true('error' in result, `no handshake for ${name}`);
  }
});

test('a challenge that is deleted is no longer answered, and another one for the same name takes over', async (t) => {
  const index = new TlsAlpnIndex();
  const first = tlsChallenge('first', 'a.test');
  const second = tlsChallenge('second', 'a.test', `${KEY_AUTH}2`);
  index.upsert(first);
  index.upsert(second);
  index.remove(second);
  const responder = createTlsAlpnResponder({ index, port: 0, host: '127.0.0.1' });
  const port = await responder.listen();
  t.teardown(() => responder.close());
  t.deepEqual(await alpnCheck({ address: new URL(`https://127.0.0.1:${port}`), name: 'a.test', keyAuthorization: KEY_AUTH }), { ok: true });
  index.remove(first);
  const gone = await alpnCheck({ address: new URL(`https://127.0.0.1:${port}`), name: 'a.test', keyAuthorization: KEY_AUTH });
  t.false(gone.ok);
});

test('the self-check reports what the CA would see when the answer is for another challenge', async (t) => {
  const port = await responderFor(t, tlsChallenge('ch', 'a.test', `${KEY_AUTH}other`));
  const result = await alpnCheck({ address: new URL(`https://127.0.0.1:${port}`), name: 'a.test', keyAuthorization: KEY_AUTH });
  t.deepEqual(result, {
    ok: false,
    requested: `TLS handshake to 127.0.0.1:${port} (SNI a.test, ALPN acme-tls/1)`,
    got: 'the certificate carries the digest of another key authorization (a stale or foreign challenge)',
  });
});

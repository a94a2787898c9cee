/** Small HTTP(S) GET used by readiness checks; node:https because probes need client certificates. */
import http from 'node:http';
import https from 'node:https';

export interface TlsFiles {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface Response {
  status: number;
  body: string;
}

export function get(url: string, tls: TlsFiles = {}, timeoutMs = 2000): Promise<Response> {
  return new Promise((resolve, reject) => {
    const transport = url.startsWith('https:') ? https : http;
    // Pebble refuses requests without a User-Agent (RFC 8555 §6.1 says clients must send one).
    const req = transport.get(url, { ...tls, timeout: timeoutMs, agent: false, headers: { 'user-agent': 'certroute-stack-probe' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Relays DNS over UDP and TCP from one address to another, byte for byte. It gives the lagging
 * zone's primary (a second named on another port of 127.0.0.1) the address its NS record names,
 * 127.0.0.2 on the stack BIND's port: certroute asks every authoritative server on one port, and
 * named listens only on the addresses of an interface, which 127.0.0.2 is not.
 *
 * Run as `node test/env/dns-relay.ts <listen host:port> <upstream host:port>`.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { parseServer } from '../../src/dns/wire.ts';

export function startRelay(listen: string, upstream: string): void {
  const from = parseServer(listen);
  const to = parseServer(upstream);
  const udp = createSocket('udp4');
  udp.on('message', (message, client) => {
    const upstreamSocket = createSocket('udp4');
    const done = () => upstreamSocket.close();
    const timer = setTimeout(done, 10_000);
    upstreamSocket.once('message', (reply) => {
      clearTimeout(timer);
      udp.send(reply, client.port, client.address, done);
    });
    upstreamSocket.on('error', done);
    upstreamSocket.send(message, to.port, to.host);
  });
  udp.bind(from.port, from.host);
  // Half-open both ways: a client that sends its question and then shuts down its side (as
  // certroute's TCP client does) still gets the answer, which may come long after.
  createServer({ allowHalfOpen: true }, (client) => {
    const server = connect({ port: to.port, host: to.host, allowHalfOpen: true });
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.pipe(server).pipe(client);
  }).listen(from.port, from.host, () => console.log(`relaying DNS from ${listen} to ${upstream}`));
}

if (import.meta.main) {
  const [listen, upstream] = process.argv.slice(2);
  if (!listen || !upstream) throw new Error('usage: dns-relay.ts <listen host:port> <upstream host:port>');
  startRelay(listen, upstream);
}

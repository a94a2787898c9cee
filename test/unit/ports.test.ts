/**
 * The stack's port allocator: every port it hands out is free for TCP and for UDP, since BIND and
 * challtestsrv listen on both. Here thousands of UDP ports are held by this process, as other
 * programs' client sockets hold them on a busy machine; without the UDP check about one port in
 * seven would be among them.
 */
import test from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import { freePorts } from '../../test/env/ports.ts';

function holdUdp(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });
}

test('no port handed out is held for UDP, and none is handed out twice', async (t) => {
  const held: Socket[] = [];
  t.teardown(() => held.forEach((s) => s.close()));
  for (let i = 0; i < 4_000; i++) held.push(await holdUdp());
  const taken = new Set(held.map((s) => s.address().port));

  const ports = await freePorts(30);
  t.is(ports.length, 30);
  t.is(new Set(ports).size, 30, 'thirty different ports');
  t.deepEqual(ports.filter((p) => taken.has(p)), [], 'none of them is held for UDP');
});

/**
 * Free ports on 127.0.0.1, allocated together so that no two components get the same one. Each is
 * free for TCP and for UDP: DNS servers (BIND, challtestsrv) take both, and a UDP port in the
 * ephemeral range is often held by some other program's client socket while its TCP twin is free.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** A UDP socket bound to `port`, or undefined when the port is taken for UDP. */
function bindUdp(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected listener address');
  return address.port;
}

export async function freePorts(count: number): Promise<number[]> {
  // Hold every listener, those of ports refused for UDP too, until all are open: the kernel then
  // cannot hand out one port twice, nor a refused one again.
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      if (servers.length > count + 10_000) throw new Error(`no ${count} ports free for both TCP and UDP on 127.0.0.1`);
      const batch = await Promise.all(Array.from({ length: count - ports.length }, listen));
      servers.push(...batch);
      for (const server of batch) {
        const udp = await bindUdp(portOf(server));
        if (!udp) continue;
        sockets.push(udp);
        ports.push(portOf(server));
      }
    }
    return ports;
  } finally {
    for (const socket of sockets) socket.close();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/**
 * The client's address from grpc-js's `call.getPeer()` (`ipv4:1.2.3.4:5678`, `[::1]:5678`,
 * `1.2.3.4:5678` depending on the version), without the port, written as Fastify writes
 * `request.ip`, so a client has one failed-authentication bucket across REST and gRPC.
 */
export function peerAddress(peer: string): string {
  // Every call of a connection has the same peer string: remembered, not re-parsed per call.
  let addr = seen.get(peer);
  if (addr === undefined) {
    if (seen.size >= 4096) seen.clear();
    seen.set(peer, (addr = parsePeer(peer)));
  }
  return addr;
}

const seen = new Map<string, string>();

function parsePeer(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  const addr = bracketed ? bracketed[1]! : (p.match(/:/g)?.length ?? 0) === 1 ? p.replace(/:\d+$/, '') : p;
  return addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

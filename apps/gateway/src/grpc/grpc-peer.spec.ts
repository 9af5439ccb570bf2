import { describe, expect, it } from 'vitest';
import { peerAddress } from './grpc-peer';

describe('peerAddress', () => {
  it('drops the scheme and the port, keeps IPv6 whole', () => {
    expect(peerAddress('ipv4:127.0.0.1:54321')).toBe('127.0.0.1');
    expect(peerAddress('127.0.0.1:54321')).toBe('127.0.0.1');
    expect(peerAddress('ipv6:[::1]:443')).toBe('::1');
    expect(peerAddress('[2001:db8::7]:80')).toBe('2001:db8::7');
    expect(peerAddress('::1')).toBe('::1');
    expect(peerAddress('[::ffff:10.0.0.2]:9')).toBe('10.0.0.2');
    expect(peerAddress('unix:/tmp/sock')).toBe('unix:/tmp/sock');
  });
});

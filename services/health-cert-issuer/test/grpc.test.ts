// Pure parts of the gRPC adapter: who counts as a loopback caller for RevokeHost without a token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackPeer } from '../src/grpc.ts';

test('loopback peers are 127/8, ::1, IPv4-mapped 127/8 and unix sockets; nothing else', () => {
  for (const peer of [
    'ipv4:127.0.0.1:5000',
    '127.1.2.3:1',
    'ipv6:[::1]:443',
    'ipv6:[::ffff:127.0.0.1]:9',
    'unix:/run/x.sock',
  ]) {
    assert.equal(isLoopbackPeer(peer), true, peer);
  }
  for (const peer of [
    'ipv4:10.0.0.1:5000',
    'ipv4:128.0.0.1:1',
    'ipv6:[::2]:443',
    'ipv6:[::ffff:10.0.0.1]:9',
    'ipv4:127.0.0.1.evil:1',
    'ipv6:[fe80::1]:1',
    '',
  ]) {
    assert.equal(isLoopbackPeer(peer), false, peer);
  }
});

// One admin check for every service: token when configured, else loopback callers only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AdminAuthError, authorizeAdmin, isLoopbackPeer } from '../src/index.ts';

function fakeCall(peer: string, md: Record<string, string> = {}) {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return { metadata, getPeer: () => peer };
}

test('loopback peers are 127/8, ::1, IPv4-mapped 127/8 and unix sockets, in grpc-js and C-core spellings', () => {
  for (const peer of [
    'ipv4:127.0.0.1:5000',
    '127.1.2.3:1',
    '127.0.0.1:50051',
    'ipv6:[::1]:5',
    '[::1]:443',
    '::1:5',
    '0:0:0:0:0:0:0:1:5',
    'ipv6:[::ffff:127.0.0.1]:9',
    '::ffff:127.0.0.1:9',
    'unix:/run/x.sock',
  ]) {
    assert.equal(isLoopbackPeer(peer), true, peer);
  }
  for (const peer of [
    'ipv4:10.0.0.5:1234',
    '10.0.0.5:1234',
    'ipv4:128.0.0.1:1',
    'ipv6:[::2]:443',
    '::2:443',
    '::1:5:443',
    'ipv6:[::ffff:10.0.0.1]:9',
    '::ffff:10.0.0.1:9',
    'ipv4:127.0.0.1.evil:1',
    'ipv6:[fe80::1]:1',
    '127.0.0.1',
    'localhost:1',
    'unknown',
    '',
  ]) {
    assert.equal(isLoopbackPeer(peer), false, peer);
  }
});

test('without a token: loopback accepted (operator or local@peer), any other peer PERMISSION_DENIED', () => {
  assert.equal(authorizeAdmin(fakeCall('127.0.0.1:4000'), undefined), 'local@127.0.0.1:4000');
  assert.equal(
    authorizeAdmin(fakeCall('ipv6:[::1]:5', { 'x-hostgate-operator': 'alice' }), undefined),
    'alice',
  );
  for (const peer of ['ipv4:10.0.0.5:1234', '10.0.0.5:1234', '192.168.1.9:50051', 'ipv6:[2001:db8::1]:5']) {
    const r = authorizeAdmin(fakeCall(peer, { 'x-hostgate-operator': 'alice' }), undefined, 'RevokeHost');
    assert.ok(r instanceof AdminAuthError, peer);
    assert.equal(r.code, grpc.status.PERMISSION_DENIED);
    assert.match(r.details, /RevokeHost is accepted from loopback callers only/);
  }
});

test('with a token: it is required from every peer, loopback included; wrong or malformed is UNAUTHENTICATED', () => {
  const refused: Record<string, string>[] = [
    {},
    { authorization: 'Bearer s3cre' },
    { authorization: 'Bearer s3cret ' },
    { authorization: 's3cret' },
    { authorization: 'bearer s3cret' },
    { authorization: 'Bearer ' },
  ];
  for (const md of refused) {
    const r = authorizeAdmin(fakeCall('127.0.0.1:1', md), 's3cret');
    assert.ok(r instanceof AdminAuthError, JSON.stringify(md));
    assert.equal(r.code, grpc.status.UNAUTHENTICATED);
  }
  const ok = { authorization: 'Bearer s3cret' };
  assert.equal(authorizeAdmin(fakeCall('ipv4:10.0.0.5:1234', ok), 's3cret'), 'admin');
  assert.equal(
    authorizeAdmin(fakeCall('10.0.0.5:1', { ...ok, 'x-hostgate-operator': 'bob@ops' }), 's3cret'),
    'bob@ops',
  );
  assert.equal(
    authorizeAdmin(fakeCall('10.0.0.5:1', { ...ok, 'x-hostgate-actor': 'carol' }), 's3cret'),
    'carol',
  );
  // A name that is not a plain identifier is not written to the audit log as given.
  assert.equal(
    authorizeAdmin(fakeCall('10.0.0.5:1', { ...ok, 'x-hostgate-operator': 'eve forged; drop' }), 's3cret'),
    'admin',
  );
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { kafkaMissing, startKafka } from '../src/kafka.ts';
import { isPortFree } from '../src/ports.ts';

const skip = kafkaMissing();

/** ApiVersions v0 by hand (KIP-35), so the check does not lean on the client under test elsewhere. */
function apiVersions(
  host: string,
  port: number,
): Promise<{ correlationId: number; errorCode: number; keys: number[] }> {
  const clientId = Buffer.from('hostgate-testkit');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2);
  body.writeInt32BE(0x5eed, 4);
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const frame = Buffer.concat([Buffer.alloc(4), body]);
  frame.writeInt32BE(body.length, 0);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let received = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy(new Error('ApiVersions timed out')));
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      socket.end();
      const correlationId = received.readInt32BE(4);
      const errorCode = received.readInt16BE(8);
      const count = received.readInt32BE(10);
      const keys: number[] = [];
      for (let i = 0; i < count; i++) keys.push(received.readInt16BE(14 + i * 6));
      resolve({ correlationId, errorCode, keys });
    });
    socket.write(frame);
  });
}

test('startKafka: a KRaft broker on loopback answers ApiVersions; stop frees the port and the directory', {
  skip,
  timeout: 120_000,
}, async () => {
  const started = Date.now();
  const kafka = await startKafka();
  const startMs = Date.now() - started;
  try {
    assert.equal(kafka.bootstrap, `127.0.0.1:${kafka.port}`);
    assert.match(kafka.version, /^\d+\.\d+\.\d+$/);
    const reply = await apiVersions(kafka.host, kafka.port);
    assert.equal(reply.correlationId, 0x5eed);
    assert.equal(reply.errorCode, 0);
    for (const key of [0, 1, 3, 8, 11]) assert.ok(reply.keys.includes(key), `API key ${key} offered`);
    assert.equal(await isPortFree(kafka.port), false);
    const restarted = Date.now();
    await kafka.restart();
    assert.equal((await apiVersions(kafka.host, kafka.port)).errorCode, 0, 'answers again after a restart');
    console.log(`# restart in ${Date.now() - restarted} ms`);
    console.log(`# kafka ${kafka.version} ready in ${startMs} ms`);
  } finally {
    await kafka.stop();
  }
  assert.equal(await isPortFree(kafka.port), true);
  assert.equal(existsSync(kafka.dir), false);
  await kafka.stop(); // idempotent
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { TpmTransportError } from '../src/client/errors.ts';
import { describeResponseCode } from '../src/client/response-codes.ts';
import {
  checkResponseFrame,
  DeviceTransport,
  MAX_RESPONSE_SIZE,
  openTransport,
  SimulatorTransport,
} from '../src/client/transport.ts';

const GET_RANDOM = Uint8Array.from(Buffer.from('80010000000c0000017b0008', 'hex'));
const GOOD_RESPONSE = Buffer.from('800100000014000000000008' + '11'.repeat(8), 'hex');

function frame(tpmResponse: Buffer, ack = 0): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(tpmResponse.length);
  const status = Buffer.alloc(4);
  status.writeUInt32BE(ack);
  return Buffer.concat([len, tpmResponse, status]);
}

/** A fake simulator that answers each command frame with `reply(n)` and records what it received. */
async function fakeSimulator(reply: (n: number) => Buffer | 'hang' | 'close') {
  const received: Buffer[] = [];
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (d) => {
      received.push(d);
      if (d.readUInt32BE(0) !== 8) return;
      const r = reply(n++);
      if (r === 'close') socket.destroy();
      else if (r !== 'hang') socket.write(r);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function expectCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TpmTransportError, `expected TpmTransportError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('checkResponseFrame', () => {
  test('accepts a well-formed response and returns its code', () => {
    assert.equal(checkResponseFrame(GOOD_RESPONSE), 0);
  });
  test('rejects short, bad tag, size mismatch and oversized declarations', () => {
    const cases: [Buffer, string][] = [
      [GOOD_RESPONSE.subarray(0, 9), 'RESPONSE_SHORT'],
      [Buffer.from('800300000014000000000008' + '11'.repeat(8), 'hex'), 'RESPONSE_TAG'],
      [Buffer.from('800100000015000000000008' + '11'.repeat(8), 'hex'), 'RESPONSE_SIZE'],
      [Buffer.from('800100000013000000000008' + '11'.repeat(8), 'hex'), 'RESPONSE_SIZE'],
      [Buffer.from('8001ffffffff00000000', 'hex'), 'RESPONSE_TOO_LARGE'],
    ];
    for (const [bytes, code] of cases) {
      assert.throws(
        () => checkResponseFrame(bytes),
        (e: unknown) => e instanceof TpmTransportError && e.code === code,
      );
    }
  });
});

describe('SimulatorTransport', { timeout: 20_000 }, () => {
  test('frames the command with TPM_SEND_COMMAND, locality and length', async () => {
    const sim = await fakeSimulator(() => frame(GOOD_RESPONSE));
    const t = new SimulatorTransport('127.0.0.1', sim.port, { locality: 3 });
    try {
      assert.deepEqual(Buffer.from(await t.send(GET_RANDOM)), GOOD_RESPONSE);
      const sent = Buffer.concat(sim.received);
      assert.equal(sent.readUInt32BE(0), 8);
      assert.equal(sent[4], 3);
      assert.equal(sent.readUInt32BE(5), GET_RANDOM.length);
      assert.deepEqual(new Uint8Array(sent.subarray(9, 9 + GET_RANDOM.length)), GET_RANDOM);
    } finally {
      await t.close();
      await sim.close();
    }
  });

  test('responses split across TCP segments are reassembled', async () => {
    const whole = frame(GOOD_RESPONSE);
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write(whole.subarray(0, 3));
        setTimeout(() => socket.write(whole.subarray(3, 15)), 20);
        setTimeout(() => socket.write(whole.subarray(15)), 40);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = new SimulatorTransport('127.0.0.1', (server.address() as net.AddressInfo).port);
    try {
      assert.deepEqual(Buffer.from(await t.send(GET_RANDOM)), GOOD_RESPONSE);
    } finally {
      await t.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const malformed: [string, Buffer, string][] = [
    ['bad tag', frame(Buffer.from('c4c400000014000000000008' + '11'.repeat(8), 'hex')), 'RESPONSE_TAG'],
    ['short response', frame(Buffer.from('80010000', 'hex')), 'RESPONSE_SHORT'],
    [
      'inner size disagrees with the frame',
      frame(Buffer.from('800100000040000000000008', 'hex')),
      'RESPONSE_SIZE',
    ],
    ['oversized announcement', Buffer.from('00100001', 'hex'), 'RESPONSE_TOO_LARGE'],
    ['non-zero acknowledgement', frame(GOOD_RESPONSE, 5), 'TRANSPORT_FRAMING'],
    ['trailing bytes', Buffer.concat([frame(GOOD_RESPONSE), Buffer.from('00')]), 'RESPONSE_TRAILING'],
  ];
  for (const [name, reply, code] of malformed) {
    test(`rejects ${name} with ${code}`, async () => {
      const sim = await fakeSimulator(() => reply);
      const t = new SimulatorTransport('127.0.0.1', sim.port, { timeoutMs: 2000 });
      try {
        await expectCode(t.send(GET_RANDOM), code);
      } finally {
        await t.close();
        await sim.close();
      }
    });
  }

  test('a truncated reply times out; a closed connection is reported; the next command reconnects', async () => {
    const sim = await fakeSimulator((n) =>
      n === 0 ? frame(GOOD_RESPONSE).subarray(0, 10) : n === 1 ? 'close' : frame(GOOD_RESPONSE),
    );
    const t = new SimulatorTransport('127.0.0.1', sim.port, { timeoutMs: 300 });
    try {
      await expectCode(t.send(GET_RANDOM), 'TRANSPORT_TIMEOUT');
      await expectCode(t.send(GET_RANDOM), 'TRANSPORT_CLOSED');
      assert.deepEqual(Buffer.from(await t.send(GET_RANDOM)), GOOD_RESPONSE);
    } finally {
      await t.close();
      await sim.close();
    }
  });

  test('connection refused is a TRANSPORT_IO error', async () => {
    const sim = await fakeSimulator(() => 'hang');
    const port = sim.port;
    await sim.close();
    const t = new SimulatorTransport('127.0.0.1', port);
    await expectCode(t.send(GET_RANDOM), 'TRANSPORT_IO');
    await t.close();
  });
});

describe('DeviceTransport', () => {
  test('reads the response from the same file it wrote the command to', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-dev-'));
    // A regular file stands in for the device: write appends, read continues after the written command.
    const file = path.join(dir, 'tpm');
    await writeFile(file, '');
    const t = new DeviceTransport(file);
    try {
      await expectCode(t.send(GET_RANDOM), 'RESPONSE_SHORT');
    } finally {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  test('a missing device is a TRANSPORT_IO error', async () => {
    const t = new DeviceTransport('/nonexistent/tpmrm0');
    await expectCode(t.send(GET_RANDOM), 'TRANSPORT_IO');
    await t.close();
  });
});

describe('openTransport', () => {
  test('parses addresses', () => {
    const s = openTransport('swtpm:127.0.0.1:2321');
    assert.ok(s instanceof SimulatorTransport);
    assert.equal(s.port, 2321);
    assert.ok(openTransport('mssim:[::1]:2321') instanceof SimulatorTransport);
    assert.ok(openTransport('/dev/tpmrm0') instanceof DeviceTransport);
    assert.ok(openTransport('device:/dev/tpm0') instanceof DeviceTransport);
    for (const bad of ['tcp:1.2.3.4:1', 'swtpm:host:0', 'swtpm:host:99999', 'swtpm:host']) {
      assert.throws(
        () => openTransport(bad),
        (e: unknown) => e instanceof TpmTransportError && e.code === 'TRANSPORT_ADDRESS',
      );
    }
  });
  test('MAX_RESPONSE_SIZE bounds buffering', () => {
    assert.ok(MAX_RESPONSE_SIZE >= 4096 && MAX_RESPONSE_SIZE <= 1 << 20);
  });
});

describe('describeResponseCode', () => {
  test('format-1 codes with session, handle and parameter numbers', () => {
    assert.deepEqual(
      [describeResponseCode(0x99d).name, describeResponseCode(0x99d).session],
      ['TPM_RC_POLICY_FAIL', 1],
    );
    const p = describeResponseCode(0x2c4);
    assert.equal(p.name, 'TPM_RC_VALUE');
    assert.equal(p.parameter, 2);
    const h = describeResponseCode(0x18b);
    assert.equal(h.name, 'TPM_RC_HANDLE');
    assert.equal(h.handle, 1);
    assert.equal(describeResponseCode(0x98e).name, 'TPM_RC_AUTH_FAIL');
    assert.equal(describeResponseCode(0x98e).session, 1);
  });
  test('format-0 errors and warnings', () => {
    assert.equal(describeResponseCode(0x100).name, 'TPM_RC_INITIALIZE');
    assert.equal(describeResponseCode(0x12f).name, 'TPM_RC_AUTH_UNAVAILABLE');
    assert.equal(describeResponseCode(0x902).name, 'TPM_RC_OBJECT_MEMORY');
    assert.equal(describeResponseCode(0x902).kind, 'warning');
    assert.equal(describeResponseCode(0x922).name, 'TPM_RC_RETRY');
    assert.equal(describeResponseCode(0).kind, 'success');
    assert.equal(describeResponseCode(0x01e).name, 'TPM_RC_BAD_TAG');
  });
  test('layered codes name their layer', () => {
    const rm = describeResponseCode(0x00090902);
    assert.equal(rm.layer, 'RESOURCE_MANAGER');
    assert.equal(rm.name, 'TPM_RC_OBJECT_MEMORY');
  });
  test('is total over arbitrary 32-bit values', () => {
    for (let i = 0; i < 20_000; i++) {
      const d = describeResponseCode((Math.random() * 2 ** 32) >>> 0);
      assert.equal(typeof d.text, 'string');
      assert.ok(d.name.startsWith('TPM_RC_'));
    }
  });
});

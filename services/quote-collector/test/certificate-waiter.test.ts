// Outcomes from hostgate.certificates.v1 are recorded in as few statements as arrive together: the
// store's batch update (first outcome wins, others' ids ignored) and the waiter over a bus that runs
// several handlers at once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { InProcessBus } from '@hostgate/bus';
import { encodeCertificateEvent, KAFKA_TOPICS } from '@hostgate/protos';
import { CertificateWaiter } from '../src/certificate-waiter.ts';
import { QuoteCollectorStore } from '../src/store.ts';
import { counting, openTestDb, type StoreKind, silentLogger, storeMissing } from './helpers.ts';

async function pending(store: QuoteCollectorStore, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  await store.db.query(
    `INSERT INTO attestations (attestation_id, host_id, created_at_ms)
     SELECT id, 'host-' || id, 1 FROM unnest($1::text[]) AS id`,
    [ids],
  );
  return ids;
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`recording outcomes (${kind})`, { skip: storeMissing(kind) }, () => {
    test('completeAttestations records pending ones in one statement; the first outcome wins', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const store = new QuoteCollectorStore(db);
      const [a, b, c] = await pending(store, 3);
      assert.ok(a !== undefined && b !== undefined && c !== undefined);
      const event = (tag: number) => new Uint8Array([tag, 0, 0x5c, 0x22, 0x2c, 0x7b, 0xff]);
      await store.completeAttestations(
        [{ attestationId: c, outcome: 'REFUSED', certificateEvent: event(9) }],
        5,
      );
      const recorded = await store.completeAttestations(
        [
          { attestationId: a, outcome: 'ISSUED', certificateEvent: event(1) },
          { attestationId: b, outcome: 'REFUSED', certificateEvent: event(2) },
          { attestationId: c, outcome: 'ISSUED', certificateEvent: event(3) },
          { attestationId: 'not-ours', outcome: 'ISSUED', certificateEvent: event(4) },
        ],
        10,
      );
      assert.deepEqual([...recorded].sort(), [a, b].sort());
      const got = async (id: string) => {
        const r = await store.getAttestation(id);
        return [r?.outcome, Buffer.from(r?.certificateEvent ?? []).toString('hex')];
      };
      assert.deepEqual(await got(a), ['ISSUED', Buffer.from(event(1)).toString('hex')]);
      assert.deepEqual(await got(b), ['REFUSED', Buffer.from(event(2)).toString('hex')]);
      assert.deepEqual(await got(c), ['REFUSED', Buffer.from(event(9)).toString('hex')]);
      assert.equal(
        (
          await store.completeAttestations(
            [{ attestationId: a, outcome: 'REFUSED', certificateEvent: event(5) }],
            11,
          )
        ).size,
        0,
      );
    });

    test('the waiter records a burst of outcomes in fewer statements than outcomes, and wakes each call', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const counted = counting(db);
      const store = new QuoteCollectorStore(counted.db);
      const bus = new InProcessBus({ partitions: 8 });
      t.after(() => bus.close());
      const waiter = new CertificateWaiter({ store, pollMs: 60_000 });
      t.after(() => waiter.close());
      await waiter.subscribe(bus, silentLogger);
      const ids = await pending(store, 40);
      const waits = ids.map((id) => waiter.wait(id, 30_000).promise);
      const before = counted.statements.length;
      await Promise.all(
        ids.map((id, i) =>
          bus.publish(
            KAFKA_TOPICS.certificates,
            `host-${i}`,
            encodeCertificateEvent({
              type: i % 2 === 0 ? 'CERTIFICATE_EVENT_TYPE_ISSUED' : 'CERTIFICATE_EVENT_TYPE_REFUSED',
              attestationId: id,
            }),
          ),
        ),
      );
      const outcomes = await Promise.all(waits);
      assert.ok(outcomes.every((o) => o.kind === 'event'));
      const updates = counted.statements
        .slice(before)
        .filter((s) => s.trimStart().startsWith('UPDATE attestations'));
      t.diagnostic(`${ids.length} outcomes recorded in ${updates.length} statements`);
      assert.ok(updates.length >= 1 && updates.length < ids.length, `${updates.length} statements`);
      // Another outcome for one already answered (a redelivery) changes nothing; the call waiting
      // for it is woken once the handler has recorded (or not) what it carries.
      const again = waiter.wait(ids[0]!, 30_000).promise;
      await bus.publish(
        KAFKA_TOPICS.certificates,
        'host-0',
        encodeCertificateEvent({ type: 'CERTIFICATE_EVENT_TYPE_REFUSED', attestationId: ids[0]! }),
      );
      assert.equal((await again).kind, 'event');
      for (const [i, id] of ids.entries())
        assert.equal((await store.getAttestation(id))?.outcome, i % 2 === 0 ? 'ISSUED' : 'REFUSED');
    });
  });
}

// Test fixtures: a collector over PGlite (or the DATABASE_URL server), software AKs enrolled
// straight into the store, and attestation requests built as a TPM would build them.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { AttestRequest__Output, HashAlgorithm__Output } from '@hostgate/protos';
import {
  createLogger,
  type Db,
  openEmbeddedPostgres,
  openPostgresDb,
  type Queryable,
} from '@hostgate/service-runtime';
import { createTestSchema, postgresMissing } from '@hostgate/testkit/postgres';
import {
  ekTemplate,
  type HashName,
  marshalTpmtPublic,
  type PcrValueMap,
  parsePcrList,
  TPMA,
} from '@hostgate/tpm2-js-lite';
import {
  samplePcrs,
  type SoftwareAk,
  softwareAk,
  softwareCertify,
  softwareQuote,
} from '@hostgate/tpm2-js-lite/testing';
import { hostIdForEk, QuoteCollector } from '../src/collector.ts';
import { migrations } from '../src/migrations.ts';
import { QuoteCollectorStore } from '../src/store.ts';

export const silentLogger = createLogger({
  service: 'quote-collector-test',
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

export const REQUIRED = 'sha256:0,1,2,3,4,5,6,7';

/** A clock the test moves by hand. */
export class TestClock {
  ms = Date.UTC(2026, 0, 1);
  readonly now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export type StoreKind = 'pglite' | 'postgres';

/** Why the store tier cannot run, or undefined. */
export function storeMissing(kind: StoreKind): string | undefined {
  return kind === 'postgres' ? postgresMissing() : undefined;
}

/** A migrated store of `kind`; close() drops everything it made. */
export async function openTestDb(kind: StoreKind): Promise<{ db: Db; close(): Promise<void> }> {
  if (kind === 'pglite') {
    const embedded = await openEmbeddedPostgres(undefined);
    const db = embedded.db('quote_collector');
    await db.migrate(migrations);
    return { db, close: () => embedded.close() };
  }
  const schema = await createTestSchema('hg_qc');
  const db = await openPostgresDb(schema.url, schema.schema, { maxConnections: 4 });
  await db.migrate(migrations);
  return {
    db,
    close: async () => {
      await db.close();
      await schema.drop();
    },
  };
}

/** `db` with every round trip to the database counted (a transaction's BEGIN and COMMIT too). */
export function counting(db: Db): { db: Db; statements: string[] } {
  const statements: string[] = [];
  const counted: Db = {
    kind: db.kind,
    schema: db.schema,
    query: <R>(sql: string, params?: readonly unknown[]) => {
      statements.push(sql);
      return db.query<R>(sql, params);
    },
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      db.transaction((tx) => {
        statements.push('BEGIN');
        const inner: Queryable = {
          query: <R>(sql: string, params?: readonly unknown[]) => {
            statements.push(sql);
            return tx.query<R>(sql, params);
          },
        };
        return fn(inner).finally(() => statements.push('COMMIT'));
      }),
    migrate: (m) => db.migrate(m),
    close: () => db.close(),
  };
  return { db: counted, statements };
}

export function newCollector(db: Db, clock: TestClock, opts: { nonceTtlMs?: number } = {}): QuoteCollector {
  return new QuoteCollector({
    store: new QuoteCollectorStore(db),
    ekRoots: [],
    nonceTtlMs: opts.nonceTtlMs ?? 60_000,
    enrollmentTtlMs: 300_000,
    pcrSelection: parsePcrList(REQUIRED),
    now: clock.now,
  });
}

/** A software EK public (TCG template shape with a random unique field), for a distinct host id. */
export function softwareEkPublic(): Uint8Array {
  const ek = ekTemplate('ecc');
  if (ek.type !== 'ecc') throw new Error('unreachable');
  const unique = new TextEncoder().encode(randomUUID().replace(/-/g, ''));
  return marshalTpmtPublic({ ...ek, x: unique, y: unique });
}

/** Enrolls `ak` into the store directly (no EK certificate), activated unless told otherwise. */
export async function enrollSoftwareAk(
  collector: QuoteCollector,
  ak: SoftwareAk,
  opts: { activate?: boolean; now?: number } = {},
): Promise<string> {
  const ekPublic = softwareEkPublic();
  const hostId = hostIdForEk(ekPublic);
  const now = opts.now ?? Date.now();
  const enrollment = {
    enrollmentId: randomUUID(),
    akPublic: ak.publicBytes,
    akName: ak.name,
    secretDigest: new Uint8Array(32),
    createdAtMs: now,
    expiresAtMs: now + 60_000,
  };
  await collector.store.addEnrollment(
    { hostId, ekPublic, ekCertificate: new Uint8Array([0x30, 0]), ekCertificateIssuer: 'CN=test' },
    enrollment,
  );
  if (opts.activate ?? true)
    await collector.store.activate({ ...enrollment, hostId, activatedAtMs: undefined }, now);
  return hostId;
}

/**
 * A collector over a fresh test database (closed when the test ends) with one software P-256 AK
 * enrolled and activated: the setup of the attest tests.
 */
export async function enrolledCollector(kind: StoreKind, t: { after(fn: () => Promise<void>): void }) {
  const { db, close } = await openTestDb(kind);
  t.after(close);
  const clock = new TestClock();
  const collector = newCollector(db, clock);
  const ak = softwareAk('p256');
  const hostId = await enrollSoftwareAk(collector, ak, { now: clock.ms });
  return { db, collector, clock, ak, hostId };
}

const HASH_ENUM: Record<HashName, HashAlgorithm__Output> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
};

/** An unrestricted sign-only P-256 key, the health certificate's subject key. */
export function subjectKey(attributes?: number): SoftwareAk {
  const base = TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.userWithAuth | TPMA.sign;
  return softwareAk('p256', { attributes: attributes ?? base });
}

export interface AttestOptions {
  ak: SoftwareAk;
  nonce: Uint8Array;
  /** PCR values sent and quoted (default: sha256 0-7). */
  pcrs?: PcrValueMap;
  clock?: { clock?: bigint; resetCount?: number; restartCount?: number };
  key?: SoftwareAk;
  /** Who certifies the subject key (default the AK). */
  certifier?: SoftwareAk;
  eventLog?: Uint8Array;
}

export function attestRequest(o: AttestOptions): AttestRequest__Output {
  const pcrs = o.pcrs ?? samplePcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7]);
  const q = softwareQuote({ ak: o.ak, nonce: o.nonce, pcrs, ...(o.clock ? { clock: o.clock } : {}) });
  const key = o.key ?? subjectKey();
  const c = softwareCertify({ ak: o.certifier ?? o.ak, nonce: o.nonce, certified: key.publicBytes });
  return {
    akName: Buffer.from(o.ak.name),
    nonce: Buffer.from(o.nonce),
    quote: {
      attest: Buffer.from(q.attest),
      signature: Buffer.from(q.signature),
      pcrBanks: [...pcrs].map(([hash, bank]) => ({
        hashAlgorithm: HASH_ENUM[hash],
        pcrs: [...bank].map(([index, digest]) => ({ index, digest: Buffer.from(digest) })),
      })),
    },
    eventLog: Buffer.from(o.eventLog ?? new Uint8Array([1, 2, 3])),
    certifiedKey: {
      keyPublic: Buffer.from(key.publicBytes),
      certifyAttest: Buffer.from(c.attest),
      certifySignature: Buffer.from(c.signature),
    },
  };
}

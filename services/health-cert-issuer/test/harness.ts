// Test harness: an issuer on an in-process bus and an embedded (or DATABASE_URL) store, software
// TPM keys to build verdicts, and recorders of what the issuer publishes.
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type BusMessage, InProcessBus } from '@hostgate/bus';
import {
  type CertificateEvent__Output,
  decodeCertificateEvent,
  decodeSocEvent,
  encodeVerdict,
  type HealthCertIssuerServiceClient,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type Refusal,
  type SocEvent__Output,
  type Verdict,
} from '@hostgate/protos';
import {
  createLogger,
  type Db,
  loadServiceConfig,
  openEmbeddedPostgres,
  openPostgresDb,
} from '@hostgate/service-runtime';
import { TPMA } from '@hostgate/tpm2-js-lite';
import { type SoftwareAk, softwareAk, softwareCertify } from '@hostgate/tpm2-js-lite/testing';
import { createTestSchema } from '@hostgate/testkit/postgres';
import {
  configSchema,
  FleetHub,
  Issuer,
  type IssuerOptions,
  type RunningIssuer,
  SERVICE_NAME,
  start,
} from '../src/index.ts';

export const silentLogger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

/** A host's TPM keys: the AK and a fixedTPM sign-only P-256 key to certify. */
export interface HostKeys {
  ak: SoftwareAk;
  subject: SoftwareAk;
}

export const SUBJECT_ATTRIBUTES =
  TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.userWithAuth | TPMA.sign;

export function hostKeys(subjectAttributes = SUBJECT_ATTRIBUTES): HostKeys {
  return { ak: softwareAk('p256'), subject: softwareAk('p256', { attributes: subjectAttributes }) };
}

export interface VerdictInput {
  hostId: string;
  keys: HostKeys;
  pass: boolean;
  attestationId?: string;
  verdictId?: string;
  hostClass?: string;
  policyVersion?: number;
  refusals?: Refusal[];
  pcrDigest?: Uint8Array;
  /** Certify another key than the one sent (a forged binding). */
  certifyOther?: boolean;
}

export function verdict(
  input: VerdictInput,
): Verdict & { attestationId: string; verdictId: string; pcrDigest: Uint8Array } {
  const nonce = randomBytes(32);
  const certified = input.certifyOther
    ? softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES })
    : input.keys.subject;
  const certify = softwareCertify({ ak: input.keys.ak, nonce, certified: certified.publicBytes });
  const pcrDigest = input.pcrDigest ?? randomBytes(32);
  const attestationId = input.attestationId ?? randomUUID();
  const verdictId = input.verdictId ?? randomUUID();
  return {
    verdictId,
    attestationId,
    hostId: input.hostId,
    pass: input.pass,
    hostClass: input.hostClass ?? 'web-frontend',
    policyVersion: input.policyVersion ?? 7,
    refusals: input.refusals ?? [],
    message: input.pass ? 'passed' : 'refused',
    quoteInfo: { pcrDigest, pcrDigestAlgorithm: 'HASH_ALGORITHM_SHA256', akName: input.keys.ak.name },
    certifiedKey: {
      keyPublic: input.keys.subject.publicBytes,
      certifyAttest: certify.attest,
      certifySignature: certify.signature,
    },
    akPublic: input.keys.ak.publicBytes,
    pcrDigest,
  };
}

/** Collects every record of a topic (its own consumer group). */
export class Recorder {
  readonly messages: BusMessage[] = [];
  private waiters: Array<() => void> = [];
  push(m: BusMessage): void {
    this.messages.push(m);
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once `predicate` holds over the messages, or rejects after `timeoutMs`. */
  async until(predicate: (messages: BusMessage[]) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms with ${this.messages.length} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  certificateEvents(): CertificateEvent__Output[] {
    return this.messages.map((m) => decodeCertificateEvent(m.value));
  }
  socEvents(): SocEvent__Output[] {
    return this.messages.map((m) => decodeSocEvent(m.value));
  }
}

export interface Harness {
  issuer: RunningIssuer;
  bus: InProcessBus;
  db: Db;
  certificates: Recorder;
  events: Recorder;
  dlq: Recorder;
  client: HealthCertIssuerServiceClient;
  publishVerdict(v: Verdict, key?: string): Promise<void>;
  publishRaw(key: string, value: Uint8Array): Promise<void>;
}

export interface HarnessOptions {
  /** 'pglite' (default) or 'postgres' (DATABASE_URL, a fresh schema). */
  store?: 'pglite' | 'postgres';
  /** Wraps the store handed to the issuer (fault injection). */
  wrapDb?: (db: Db) => Db;
  config?: Record<string, string>;
}

async function record(t: TestContext, bus: InProcessBus, topic: string): Promise<Recorder> {
  const r = new Recorder();
  const sub = await bus.subscribe({
    topic,
    group: `test-${randomUUID()}`,
    handler: async (m) => r.push(m),
  });
  t.after(() => sub.close({ drain: false }));
  return r;
}

/** The issuer's store on PGlite or on a throwaway schema of the DATABASE_URL server; closed (and dropped) after `t`. */
export async function openTestDb(
  t: TestContext,
  store: 'pglite' | 'postgres',
  schemaPrefix = 'hg_issuer',
): Promise<Db> {
  if (store === 'postgres') {
    const schema = await createTestSchema(schemaPrefix);
    t.after(() => schema.drop());
    const db = await openPostgresDb(schema.url, schema.schema);
    t.after(() => db.close());
    return db;
  }
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  return embedded.db('health_cert_issuer');
}

export async function startHarness(t: TestContext, options: HarnessOptions = {}): Promise<Harness> {
  const db = await openTestDb(t, options.store === 'postgres' ? 'postgres' : 'pglite');
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const certificates = await record(t, bus, KAFKA_TOPICS.certificates);
  const events = await record(t, bus, KAFKA_TOPICS.events);
  const dlq = await record(t, bus, `${KAFKA_TOPICS.verdicts}.dlq`);
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0', ...options.config },
  );
  const issuer = await start(config, { logger: silentLogger, bus, db: options.wrapDb?.(db) ?? db });
  t.after(() => issuer.stop());
  const protos = loadHostgateProtos();
  const client = new protos.HealthCertIssuerService(issuer.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  return {
    issuer,
    bus,
    db,
    certificates,
    events,
    dlq,
    client,
    publishVerdict: (v, key) => bus.publish(KAFKA_TOPICS.verdicts, key ?? v.hostId ?? '', encodeVerdict(v)),
    publishRaw: (key, value) => bus.publish(KAFKA_TOPICS.verdicts, key, value),
  };
}

/** Promisified unary call. */
export function call<Req, Res>(
  client: HealthCertIssuerServiceClient,
  method: 'CheckHost' | 'GetCaBundle' | 'GetCrl' | 'ListCertificates' | 'RevokeHost',
  request: Req,
  metadata = new grpc.Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!.bind(client);
    fn(request, metadata, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

/** An Issuer with the tests' settings (silent, 1 h certificates, no backdating, 10 min CRLs); `options` override them. */
export function testIssuer(
  options: Pick<IssuerOptions, 'db' | 'bus' | 'ca'> & Partial<IssuerOptions>,
): Issuer {
  return new Issuer({
    logger: silentLogger,
    hub: new FleetHub(),
    validitySeconds: 3600,
    backdateSeconds: 0,
    crlValiditySeconds: 600,
    ...options,
  });
}

/** `bus` with publish() replaced: what the issuer publishes goes to `onPublish` and nowhere else. */
export function recordingBus(
  bus: InProcessBus,
  onPublish: (topic: string, value: Buffer, key: string, headers: Record<string, string>) => void,
): InProcessBus {
  return Object.assign(Object.create(bus) as InProcessBus, {
    publish: async (topic: string, key: string, value: Uint8Array, headers: Record<string, string> = {}) => {
      onPublish(topic, Buffer.from(value), key, headers);
    },
  });
}

// Starts a policy-evaluator on an InProcessBus with PGlite (or PostgreSQL when DATABASE_URL is set),
// builds Measurements with the real replayer from synthetic boot logs, and collects verdicts.
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { type BusMessage, InProcessBus } from '@hostgate/bus';
import {
  encodeMeasurements,
  type Evidence__Output,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type Measurements,
  type PcrBank,
  type Verdict__Output,
  decodeVerdict,
} from '@hostgate/protos';
import {
  createLogger,
  type Db,
  loadServiceConfig,
  openEmbeddedPostgres,
  openPostgresDb,
} from '@hostgate/service-runtime';
import { createTestSchema, postgresMissing } from '@hostgate/testkit/postgres';
import { measurementsFromEvidence } from '../../eventlog-replayer/src/index.ts';
import { buildAgileLog, quoteOf, syntheticBoot } from '../../eventlog-replayer/test/synthetic.ts';
import { configSchema, OPERATOR_METADATA, SERVICE_NAME, start } from '../src/index.ts';

export const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

type After = { after: (fn: () => unknown) => void };

/** PGlite in memory, or a fresh schema on the server named by DATABASE_URL. */
export async function openTestDb(t: After): Promise<Db> {
  if (postgresMissing() === undefined) {
    const s = await createTestSchema('hg_policy');
    const db = await openPostgresDb(s.url, s.schema, { maxConnections: 4 });
    t.after(async () => {
      await db.close();
      await s.drop();
    });
    return db;
  }
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  return embedded.db('policy_evaluator');
}

export interface Collector {
  seen: BusMessage[];
  waitFor(n: number, ms?: number): Promise<BusMessage[]>;
}

export async function collect(bus: InProcessBus, topic: string): Promise<Collector> {
  const seen: BusMessage[] = [];
  await bus.subscribe({ topic, group: `test-${topic}`, handler: async (m) => void seen.push(m) });
  return {
    seen,
    async waitFor(n, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (seen.length < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} messages on ${topic}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return seen;
    },
  };
}

export interface Evaluator {
  bus: InProcessBus;
  db: Db;
  address: string;
  verdicts: Collector;
  /** Publishes Measurements and returns the next verdict. */
  judge(m: Measurements): Promise<Verdict__Output>;
  /** Unary admin call with an operator name in the metadata. */
  call<Res>(method: string, req: object, operator?: string, token?: string): Promise<Res>;
}

export async function startEvaluator(t: After, env: Record<string, string> = {}): Promise<Evaluator> {
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const db = await openTestDb(t);
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0', ...env },
  );
  const svc = await start(config, { logger, bus, db });
  t.after(() => svc.stop());
  const verdicts = await collect(bus, KAFKA_TOPICS.verdicts);
  const protos = loadHostgateProtos();
  const client = new protos.PolicyEvaluatorService(svc.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  return {
    bus,
    db,
    address: svc.address,
    verdicts,
    async judge(m) {
      const n = verdicts.seen.length;
      await bus.publish(KAFKA_TOPICS.measurements, String(m.hostId), encodeMeasurements(m));
      const all = await verdicts.waitFor(n + 1);
      return decodeVerdict(all[n]!.value);
    },
    call<Res>(method: string, req: object, operator?: string, token?: string) {
      const md = new grpc.Metadata();
      if (operator !== undefined) md.set(OPERATOR_METADATA, operator);
      if (token !== undefined) md.set('authorization', `Bearer ${token}`);
      return new Promise<Res>((resolve, reject) => {
        const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
        fn.call(client, req, md, (err: grpc.ServiceError | null, res: Res) =>
          err ? reject(err) : resolve(res),
        );
      });
    },
  };
}

/** Measurements of a synthetic boot, through the real replayer. */
export function measurementsOf(
  attestationId: string,
  hostId: string,
  opts: { secureBoot?: boolean; shimDigest?: Uint8Array; tamperPcr?: number } = {},
): { measurements: Measurements; boot: ReturnType<typeof syntheticBoot> } {
  const boot = syntheticBoot(opts);
  const pcrBanks: PcrBank[] = quoteOf(['sha1', 'sha256'], boot.events);
  if (opts.tamperPcr !== undefined) {
    const p = pcrBanks[1]!.pcrs!.find((x) => x.index === opts.tamperPcr)!;
    const d = Buffer.from(p.digest as Uint8Array);
    d[0]! ^= 0xff;
    p.digest = d;
  }
  const evidence = {
    attestationId,
    hostId,
    receivedAt: null,
    nonce: Buffer.alloc(32),
    quote: { attest: Buffer.from('a'), signature: Buffer.from('s'), pcrBanks },
    quoteInfo: null,
    eventLog: Buffer.from(buildAgileLog(['sha1', 'sha256'], boot.events)),
    certifiedKey: {
      keyPublic: Buffer.from('key'),
      certifyAttest: Buffer.alloc(0),
      certifySignature: Buffer.alloc(0),
    },
    akPublic: Buffer.from('ak'),
  } as unknown as Evidence__Output;
  return { measurements: measurementsFromEvidence(evidence), boot };
}

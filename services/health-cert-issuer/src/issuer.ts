// The issuer's logic, without gRPC: verdict in -> certificate issued or refused (and the host's
// live certificates revoked), stored once per attestation, published on the certificates and SOC
// topics, and told to fleet watchers. Also operator revocation, expiry and the CRL.
import { createHash } from 'node:crypto';
import {
  createCrl,
  type HealthCa,
  HealthCertError,
  issueHealthCert,
  MAX_CRL_ENTRIES,
  MAX_VALIDITY_SECONDS,
} from '@hostgate/health-cert';
import { type Bus, PoisonMessageError } from '@hostgate/bus';
import { decodeVerdict, isRefusalCode, ProtoCodecError, type Verdict__Output } from '@hostgate/protos';
import { Batcher, type Db, type Logger } from '@hostgate/service-runtime';
import {
  issuedMessages,
  type OutgoingMessage,
  operatorRevokedMessages,
  refusedMessages,
  type RevokedInfo,
  timestamp,
} from './events.ts';
import type { FleetCause, FleetHub, HostState } from './fleet.ts';
import type { Refusal } from './refusal.ts';
import * as store from './store.ts';
import { createIssuerMetrics, type IssuerMetrics } from './metrics.ts';
import { subjectKeyFromVerdict } from './subject-key.ts';

export interface IssuerOptions {
  db: Db;
  bus: Bus;
  logger: Logger;
  ca: HealthCa;
  hub: FleetHub;
  validitySeconds: number;
  backdateSeconds: number;
  crlValiditySeconds: number;
  /** Clock (tests). */
  now?: () => Date;
  /** Default: instruments from the global meter provider. */
  metrics?: IssuerMetrics;
}

export interface VerdictMessage {
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
}

export interface CurrentCrl {
  der: Uint8Array;
  pem: string;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
}

const MAX_ID_CHARS = 128;
const MAX_POLICY_VERSION = 2_147_483_647;
const EXPIRE_BATCH = 500;
/** Verdicts written in one statement at most. */
const WRITE_BATCH = 64;
/** Refusal statements tried when the live certificates keep changing under it (then the bus retries). */
const MAX_REVOKE_ATTEMPTS = 5;
/** Hosts whose live certificates the issuer remembers (about 100 bytes each). */
const MAX_KNOWN_HOSTS = 100_000;

/** A refusal expected other live certificates than those live (`live`, what to expect next). */
class LiveChanged extends Error {
  readonly live: string[];
  constructor(live: string[]) {
    super('the live certificates of the host were not those expected');
    this.live = live;
  }
}

function serialHex(serial: bigint): string {
  return serial.toString(16);
}

function checkId(value: string, what: string): void {
  if (value === '' || value.length > MAX_ID_CHARS || /\p{Cc}/u.test(value)) {
    throw new PoisonMessageError('VERDICT_INVALID', `${what} must be 1-${MAX_ID_CHARS} printable characters`);
  }
}

/**
 * Bounds on what a verdict's reasons may put into a CertificateEvent: Kafka refuses records over
 * 1 MB by default, and a REFUSED event that cannot be published leaves the agent without an answer.
 */
const MAX_REFUSALS = 500;
const MAX_REFUSAL_CHARS = 256 * 1024;
const MAX_TEXT_CHARS = 2048;
const MAX_DETAILS = 32;

/** Bounded, and without U+0000 (PostgreSQL text and jsonb cannot hold it). */
function storable(text: string): string {
  const clean = text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
  return clean.length > MAX_TEXT_CHARS ? `${clean.slice(0, MAX_TEXT_CHARS - 1)}…` : clean;
}

function storableDetails(details: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(details)
      .slice(0, MAX_DETAILS)
      .map(([k, v]) => [storable(k), storable(v)]),
  );
}

function refusalChars(r: Refusal): number {
  let n = r.code.length + r.message.length + 16;
  for (const [k, v] of Object.entries(r.details)) n += k.length + v.length + 8;
  return n;
}

/**
 * Refusals as the verdict carries them, each code checked and bounded (at most MAX_REFUSALS and
 * about MAX_REFUSAL_CHARS in all, the last one then saying how many were left out); a failing
 * verdict always has at least one.
 */
function refusalsOf(verdict: Verdict__Output): Refusal[] {
  const out: Refusal[] = [];
  let chars = 0;
  for (const r of verdict.refusals) {
    const code = String(r.code);
    const refusal: Refusal = isRefusalCode(code)
      ? { code, message: storable(r.message), details: storableDetails(r.details) }
      : {
          code: 'POLICY_RULE_FAILED',
          message: storable(r.message) || 'refused with an unknown reason code',
          details: { ...storableDetails(r.details), observed: storable(code) },
        };
    chars += refusalChars(refusal);
    if (out.length === MAX_REFUSALS - 1 || chars > MAX_REFUSAL_CHARS) break;
    out.push(refusal);
  }
  if (out.length < verdict.refusals.length) {
    out.push({
      code: 'POLICY_RULE_FAILED',
      message: `and ${verdict.refusals.length - out.length} more reasons, left out to keep the event publishable`,
      details: { limit: String(MAX_REFUSALS), observed: String(verdict.refusals.length) },
    });
  }
  if (out.length === 0 && !verdict.pass) {
    out.push({
      code: 'POLICY_RULE_FAILED',
      message: storable(verdict.message) || 'the verdict failed without a reason',
      details: {},
    });
  }
  return out;
}

export class Issuer {
  readonly ca: HealthCa;
  private readonly db: Db;
  private readonly bus: Bus;
  private readonly logger: Logger;
  private readonly hub: FleetHub;
  private readonly validitySeconds: number;
  private readonly backdateSeconds: number;
  private readonly crlValiditySeconds: number;
  /** The issuer's clock (injected in tests); every "now" of the service comes from it. */
  readonly now: () => Date;
  readonly metrics: IssuerMetrics;
  private crlCache: { fingerprint: string; crl: CurrentCrl } | undefined;
  private crlBuilding: Promise<CurrentCrl> | undefined;
  /**
   * Live certificates each host had when this issuer last wrote it (LRU-bounded): what a refusal
   * expects to revoke. Only a guess — the store checks it — so other replicas' writes cannot break it.
   */
  private readonly liveByHost = new Map<string, Array<{ serial: string; notAfter: Date }>>();
  /**
   * Verdicts written together: the bus runs many handlers at once, and their writes go in one
   * statement per batch (one round trip and one commit) instead of one each. One write per host in
   * a batch (the statement touches a host's rows once); a batch that fails is retried write by write.
   */
  readonly writer: Batcher<store.VerdictWrite, store.VerdictWriteResult>;

  constructor(options: IssuerOptions) {
    this.db = options.db;
    this.bus = options.bus;
    this.logger = options.logger;
    this.ca = options.ca;
    this.hub = options.hub;
    this.validitySeconds = options.validitySeconds;
    this.backdateSeconds = options.backdateSeconds;
    this.crlValiditySeconds = options.crlValiditySeconds;
    this.now = options.now ?? (() => new Date());
    this.metrics = options.metrics ?? createIssuerMetrics(options.hub);
    this.writer = new Batcher((writes) => store.recordVerdicts(this.db, writes), {
      maxBatch: WRITE_BATCH,
      keyOf: (w) => w.hostId,
    });
  }

  /** Handles one record of hostgate.verdicts.v1. Throws PoisonMessageError for what no retry fixes. */
  async handleVerdict(message: VerdictMessage): Promise<void> {
    const started = performance.now();
    let verdict: Verdict__Output;
    try {
      verdict = decodeVerdict(message.value);
    } catch (err) {
      if (err instanceof ProtoCodecError) {
        throw new PoisonMessageError(err.code, `undecodable Verdict: ${err.message}`, { cause: err });
      }
      throw err;
    }
    checkId(verdict.attestationId, 'attestation_id');
    checkId(verdict.hostId, 'host_id');
    checkId(verdict.verdictId, 'verdict_id');
    if (message.key !== verdict.hostId) {
      throw new PoisonMessageError('VERDICT_KEY_MISMATCH', 'the record key is not the verdict host id');
    }
    // A redelivered verdict is recognised when its transaction claims the attestation (decide):
    // one round trip fewer for every first delivery, which is nearly all of them.
    const traceParent = message.headers['traceparent'] ?? '';
    const refusals = refusalsOf(verdict);
    if (verdict.pass && refusals.length === 0) {
      const issued = this.tryIssue(verdict);
      if (issued.ok) {
        const fresh = await this.commitIssued(verdict, issued.cert, traceParent);
        this.metrics.verdict(fresh ? 'issued' : 'redelivered', performance.now() - started);
        return;
      }
      refusals.push(issued.refusal);
    }
    const fresh = await this.commitRefused(verdict, refusals, traceParent);
    this.metrics.verdict(fresh ? 'refused' : 'redelivered', performance.now() - started);
  }

  private tryIssue(
    verdict: Verdict__Output,
  ): { ok: true; cert: ReturnType<typeof issueHealthCert> } | { ok: false; refusal: Refusal } {
    const key = subjectKeyFromVerdict(verdict.certifiedKey, verdict.akPublic);
    if (!key.ok) return key;
    if (verdict.policyVersion > MAX_POLICY_VERSION) {
      // The store keeps versions as int4; no golden set gets near this, so it is not a real verdict.
      return {
        ok: false,
        refusal: {
          code: 'ISSUANCE_FAILED',
          message: `policy version ${verdict.policyVersion} is out of range`,
          details: { observed: String(verdict.policyVersion), limit: String(MAX_POLICY_VERSION) },
        },
      };
    }
    const now = this.now();
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - this.backdateSeconds * 1000);
    try {
      const cert = issueHealthCert({
        ca: this.ca,
        hostId: verdict.hostId,
        subjectPublicKey: key.key,
        notBefore,
        // Near the end of the CA's life a certificate is cut short rather than refused.
        validitySeconds: Math.min(
          MAX_VALIDITY_SECONDS,
          this.validitySeconds + this.backdateSeconds,
          Math.max(1, Math.floor((this.ca.notAfter.getTime() - notBefore.getTime()) / 1000)),
        ),
        policyClass: verdict.hostClass,
        policyVersion: verdict.policyVersion,
        verdictId: verdict.verdictId,
        pcrDigest: Buffer.from(verdict.quoteInfo?.pcrDigest ?? []).toString('hex'),
      });
      return { ok: true, cert };
    } catch (err) {
      if (!(err instanceof HealthCertError)) throw err;
      return {
        ok: false,
        refusal: {
          code: 'ISSUANCE_FAILED',
          message: `no certificate can be issued for this verdict: ${err.message}`,
          details: { observed: err.code },
        },
      };
    }
  }

  private async commitIssued(
    verdict: Verdict__Output,
    cert: ReturnType<typeof issueHealthCert>,
    traceParent: string,
  ): Promise<boolean> {
    const now = this.now();
    const serial = serialHex(cert.serial);
    const pcrDigest = new Uint8Array(verdict.quoteInfo?.pcrDigest ?? []);
    const messages = issuedMessages(
      {
        hostId: verdict.hostId,
        attestationId: verdict.attestationId,
        verdictId: verdict.verdictId,
        notAfter: cert.notAfter,
        policyClass: verdict.hostClass,
        policyVersion: verdict.policyVersion,
        certificate: {
          serial,
          hostId: verdict.hostId,
          der: cert.der,
          notBefore: timestamp(cert.notBefore),
          notAfter: timestamp(cert.notAfter),
          policyClass: verdict.hostClass,
          policyVersion: verdict.policyVersion,
          verdictId: verdict.verdictId,
          attestationId: verdict.attestationId,
          pcrDigest,
          status: 'CERTIFICATE_STATUS_VALID',
        },
      },
      now,
      traceParent,
    );
    const state = await this.record(
      {
        attestationId: verdict.attestationId,
        hostId: verdict.hostId,
        verdictId: verdict.verdictId,
        outcome: 'issued',
        now,
        certificate: {
          serial,
          policy_class: verdict.hostClass,
          policy_version: verdict.policyVersion,
          pcr_digest: pcrDigest,
          der: cert.der,
          not_before: cert.notBefore,
          not_after: cert.notAfter,
        },
        host: {
          hostId: verdict.hostId,
          healthy: true,
          cause: 'issued',
          reason: `passed ${verdict.hostClass} v${verdict.policyVersion}`,
          reasonCode: '',
          refusals: [],
          serial,
          expiresAt: cert.notAfter,
          policyClass: verdict.hostClass,
          policyVersion: verdict.policyVersion,
          attestationId: verdict.attestationId,
          updatedAt: now,
        },
        messages,
      },
      'issued',
    );
    if (state !== undefined) {
      this.addLive(verdict.hostId, { serial, notAfter: cert.notAfter }, now);
      this.logger.info(
        { hostId: verdict.hostId, attestationId: verdict.attestationId, serial },
        'health certificate issued',
      );
    }
    return state !== undefined;
  }

  private async commitRefused(
    verdict: Verdict__Output,
    refusals: Refusal[],
    traceParent: string,
  ): Promise<boolean> {
    const now = this.now();
    const codes = [...new Set(refusals.map((r) => r.code))].join(', ');
    const reason = `attestation ${verdict.attestationId} refused: ${codes}`;
    const host: HostState = {
      hostId: verdict.hostId,
      healthy: false,
      cause: 'refused',
      reason: refusals[0]?.message || `refused: ${codes}`,
      reasonCode: refusals[0]?.code ?? '',
      refusals,
      serial: null,
      expiresAt: null,
      policyClass: '',
      policyVersion: 0,
      attestationId: verdict.attestationId,
      updatedAt: now,
    };
    // The REFUSED event lists the certificates revoked, and it is stored in the same statement that
    // revokes them: built from the serials believed live, which the statement checks (see
    // store.recordVerdicts). A wrong belief costs one more statement, built from the live set it returns.
    let expected = this.knownLive(verdict.hostId, now).map((c) => c.serial);
    for (let attempt = 1; ; attempt++) {
      const revoked: RevokedInfo[] = expected
        .map((serial) => ({ serial, revokedAt: now, reason }))
        .sort((a, b) => (a.serial < b.serial ? -1 : 1));
      const messages = refusedMessages(
        {
          hostId: verdict.hostId,
          attestationId: verdict.attestationId,
          verdictId: verdict.verdictId,
          policyClass: verdict.hostClass,
          policyVersion: verdict.policyVersion,
          refusals,
          revoked,
        },
        now,
        traceParent,
      );
      const write: store.VerdictWrite = {
        attestationId: verdict.attestationId,
        hostId: verdict.hostId,
        verdictId: verdict.verdictId,
        outcome: 'refused',
        now,
        revoke: { reason, expected },
        host,
        messages,
      };
      let state: HostState | undefined;
      try {
        state = await this.record(write, 'refused');
      } catch (err) {
        if (!(err instanceof LiveChanged) && !store.isLiveChangedError(err)) throw err;
        if (attempt >= MAX_REVOKE_ATTEMPTS) {
          throw new Error(`the live certificates of ${verdict.hostId} kept changing; retried later`, {
            cause: err,
          });
        }
        expected =
          err instanceof LiveChanged ? err.live : await store.liveSerials(this.db, verdict.hostId, now);
        continue;
      }
      if (state !== undefined) {
        this.rememberLive(verdict.hostId, []);
        if (revoked.length > 0) this.crlCache = undefined;
        this.metrics.revoked(revoked.length, 'attestation');
        this.logger.info(
          {
            hostId: verdict.hostId,
            attestationId: verdict.attestationId,
            codes,
            revoked: revoked.map((r) => r.serial),
          },
          'attestation refused',
        );
      }
      return state !== undefined;
    }
  }

  /**
   * Writes a verdict's outcome in one statement with the concurrent handlers' (store.recordVerdicts
   * through the writer), then tells watchers and
   * publishes. When an earlier delivery claimed the attestation, publishes that delivery's stored
   * messages instead and returns undefined. Throws LiveChanged when the refusal's expected live
   * certificates were not those live (nothing written).
   */
  private async record(
    write: store.VerdictWrite,
    outcome: 'issued' | 'refused',
  ): Promise<HostState | undefined> {
    const result = await this.writer.call(write);
    if (result.outcome === 'live-changed') throw new LiveChanged(result.live);
    if (result.outcome === 'redelivered') {
      await this.republish(write.attestationId);
      return undefined;
    }
    this.hub.publish({ state: result.host, cause: outcome });
    await this.publishAll(write.messages);
    return result.host;
  }

  /** What this issuer last saw live for a host (unexpired); empty when it does not know. */
  private knownLive(hostId: string, now: Date): Array<{ serial: string; notAfter: Date }> {
    return (this.liveByHost.get(hostId) ?? []).filter((c) => c.notAfter.getTime() > now.getTime());
  }

  /**
   * One more live certificate of a host, in place: a host that re-attests every few seconds has
   * hundreds live within a validity, and copying the list on every issue was quadratic.
   */
  private addLive(hostId: string, cert: { serial: string; notAfter: Date }, now: Date): void {
    const known = this.liveByHost.get(hostId);
    if (known === undefined) {
      this.rememberLive(hostId, [cert]);
      return;
    }
    // Issued in order, they expire (nearly) in order: the oldest tells whether any expired.
    const live =
      known[0] !== undefined && known[0].notAfter.getTime() <= now.getTime()
        ? known.filter((c) => c.notAfter.getTime() > now.getTime())
        : known;
    live.push(cert);
    this.rememberLive(hostId, live);
  }

  private rememberLive(hostId: string, live: Array<{ serial: string; notAfter: Date }>): void {
    this.liveByHost.delete(hostId);
    if (live.length === 0) return;
    if (this.liveByHost.size >= MAX_KNOWN_HOSTS) {
      // Oldest first (a Map iterates in insertion order): a forgotten host costs one more statement.
      this.liveByHost.delete(this.liveByHost.keys().next().value!);
    }
    this.liveByHost.set(hostId, live);
  }

  private async republish(attestationId: string): Promise<void> {
    const messages = await store.loadOutbox(this.db, attestationId);
    this.logger.debug(
      { attestationId, messages: messages.length },
      'verdict redelivered: outcome re-published',
    );
    await this.publishAll(messages);
  }

  /**
   * Hands every message to the bus in order, without waiting for one before making the next. Both
   * buses keep the order publishes were made in (the in-process one appends at once, the Kafka one
   * queues them in call order), so a host's events stay in order on each topic, and the Kafka bus
   * sends them in one produce request instead of one round trip each. Resolves when all landed.
   */
  private async publishAll(messages: readonly OutgoingMessage[]): Promise<void> {
    await Promise.all(messages.map((m) => this.bus.publish(m.topic, m.key, m.value, m.headers)));
  }

  /** Operator revocation of every live certificate of a host, audited. Returns the serials revoked. */
  async revokeHost(hostId: string, reason: string, actor: string, traceParent = ''): Promise<RevokedInfo[]> {
    const now = this.now();
    const sentence = `revoked by ${actor}: ${reason}`;
    const { revoked, state } = await this.db.transaction(async (tx) => {
      const revoked = await store.revokeLive(tx, hostId, now, sentence);
      await store.audit(tx, actor, 'revoke-host', hostId, { reason, serials: revoked.map((r) => r.serial) });
      const previous = await store.getHost(tx, hostId);
      const state =
        previous === undefined && revoked.length === 0
          ? undefined
          : await store.putHost(tx, {
              hostId,
              healthy: false,
              cause: 'revoked',
              reason: sentence,
              reasonCode: '',
              refusals: [],
              serial: null,
              expiresAt: null,
              policyClass: '',
              policyVersion: 0,
              attestationId: '',
              updatedAt: now,
            });
      return { revoked, state };
    });
    this.logger.warn(
      { hostId, actor, reason, serials: revoked.map((r) => r.serial) },
      'host revoked by an operator',
    );
    this.rememberLive(hostId, []);
    if (state !== undefined) this.hub.publish({ state, cause: 'revoked' });
    if (revoked.length > 0) {
      this.crlCache = undefined;
      this.metrics.revoked(revoked.length, 'operator');
      await this.publishAll(operatorRevokedMessages(hostId, actor, revoked, now, traceParent));
    }
    return revoked;
  }

  async hostState(hostId: string): Promise<HostState | undefined> {
    const state = await store.getHost(this.db, hostId);
    return state === undefined ? undefined : this.effective(state);
  }

  /** The state as of now: the sweep may lag behind the clock, an expired certificate is never healthy. */
  effective(state: HostState): HostState {
    if (state.healthy && state.expiresAt !== null && state.expiresAt.getTime() <= this.now().getTime()) {
      return {
        ...state,
        healthy: false,
        cause: 'expired',
        reason: `certificate ${state.serial} expired`,
        serial: null,
        expiresAt: null,
      };
    }
    return state;
  }

  /** Marks hosts whose certificate expired unhealthy and tells watchers; returns how many. */
  async sweepExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await store.expireHosts(this.db, this.now(), EXPIRE_BATCH);
      for (const state of expired) this.hub.publish({ state, cause: 'expired' satisfies FleetCause });
      total += expired.length;
      if (expired.length < EXPIRE_BATCH) return total;
    }
  }

  /**
   * Forgets the messages of attestations older than `retentionMs`: a verdict redelivered after that
   * is still recognised (its outcome row stays) but re-publishes nothing.
   */
  async pruneOutbox(retentionMs: number): Promise<number> {
    return store.pruneOutbox(this.db, new Date(this.now().getTime() - retentionMs), 10_000);
  }

  /** The current CRL: rebuilt when the revocations changed or half its validity has passed. */
  async currentCrl(): Promise<CurrentCrl> {
    if (this.crlBuilding !== undefined) return this.crlBuilding;
    this.crlBuilding = this.buildCrl().finally(() => {
      this.crlBuilding = undefined;
    });
    return this.crlBuilding;
  }

  private async buildCrl(): Promise<CurrentCrl> {
    const now = this.now();
    const rows = await store.revokedUnexpired(this.db, now, MAX_CRL_ENTRIES + 1);
    if (rows.length > MAX_CRL_ENTRIES) {
      this.logger.error(
        { limit: MAX_CRL_ENTRIES },
        'more revoked certificates than a CRL holds; the oldest are left out',
      );
      rows.length = MAX_CRL_ENTRIES;
    }
    const hash = createHash('sha256');
    for (const r of rows) hash.update(`${r.serial}\n`);
    const fingerprint = hash.digest('hex');
    const cached = this.crlCache;
    const halfLife = (this.crlValiditySeconds * 1000) / 2;
    if (
      cached !== undefined &&
      cached.fingerprint === fingerprint &&
      now.getTime() - cached.crl.thisUpdate.getTime() < halfLife
    ) {
      return cached.crl;
    }
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const crl = createCrl({
      ca: this.ca,
      revoked: rows.map((r) => ({
        serial: BigInt(`0x${r.serial}`),
        revokedAt: r.revoked_at,
        reason: 'privilegeWithdrawn',
      })),
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + this.crlValiditySeconds * 1000),
      crlNumber: await store.nextCrlNumber(this.db),
    });
    const current = {
      der: crl.der,
      pem: crl.pem,
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate,
      crlNumber: crl.crlNumber,
    };
    this.crlCache = { fingerprint, crl: current };
    return current;
  }
}

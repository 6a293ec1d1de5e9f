import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import {
  cloudEventFromSocEvent,
  dateFromTimestamp,
  decodeSocEvent,
  encodeSocEvent,
  rfc3339,
  deadLetterTopic,
  hostgateRoot,
  isRefusalCode,
  KAFKA_TOPIC_PAYLOADS,
  KAFKA_TOPICS,
  refusalCodes,
  timestampFromDate,
} from '../src/index.ts';
import { socEvent } from './samples.ts';

test('topics are the ones DESIGN.md names, each with a payload type and a dead-letter topic', () => {
  assert.deepEqual(Object.values(KAFKA_TOPICS).sort(), [
    'hostgate.certificates.v1',
    'hostgate.events.v1',
    'hostgate.evidence.v1',
    'hostgate.measurements.v1',
    'hostgate.verdicts.v1',
  ]);
  for (const topic of Object.values(KAFKA_TOPICS)) {
    assert.ok(hostgateRoot().lookupType(`hostgate.v1.${KAFKA_TOPIC_PAYLOADS[topic]}`));
  }
  assert.equal(deadLetterTopic(KAFKA_TOPICS.evidence), 'hostgate.evidence.v1.dlq');
});

test('refusal codes include every code the issues name, with stable numbers', () => {
  // Numbers are part of the wire contract: changing one breaks consumers of older payloads.
  const pinned: Record<string, number> = {
    EK_CERT_UNTRUSTED: 1,
    UNKNOWN_AK: 20,
    AK_NOT_ACTIVATED: 21,
    NONCE_UNKNOWN: 22,
    NONCE_REUSED: 23,
    NONCE_EXPIRED: 24,
    SIGNATURE_INVALID: 26,
    PCR_SELECTION_MISMATCH: 27,
    PCR_DIGEST_MISMATCH: 28,
    COUNTERS_BACKWARDS: 29,
    EVENTLOG_MALFORMED: 40,
    EVENTLOG_MISMATCH: 41,
    NO_POLICY: 60,
    POLICY_RULE_FAILED: 62,
    SECURE_BOOT_OFF: 63,
    FORBIDDEN_DIGEST: 64,
  };
  const values = hostgateRoot().lookupEnum('hostgate.v1.RefusalCode').values;
  for (const [name, n] of Object.entries(pinned)) {
    assert.equal(values[name], n, name);
    assert.ok(isRefusalCode(name), name);
  }
  const codes = refusalCodes();
  assert.equal(new Set(codes).size, codes.length);
  assert.ok(!codes.includes('REFUSAL_CODE_UNSPECIFIED' as never));
  assert.equal(isRefusalCode('REFUSAL_CODE_UNSPECIFIED'), false);
  assert.equal(isRefusalCode('no_policy'), false);
  // Names are the stable codes: upper snake case, no enum prefix.
  for (const c of codes) assert.match(c, /^[A-Z][A-Z0-9_]*$/);
});

test('timestamps convert to and from Date, including before 1970', () => {
  assert.deepEqual(timestampFromDate(new Date(1700000000123)), { seconds: '1700000000', nanos: 123000000 });
  // protobuf Timestamp: nanos are never negative, seconds floor toward -infinity
  assert.deepEqual(timestampFromDate(new Date(-1)), { seconds: '-1', nanos: 999000000 });
  assert.equal(dateFromTimestamp({ seconds: '-1', nanos: 999000000 })?.getTime(), -1);
  assert.equal(dateFromTimestamp({ seconds: 1700000000, nanos: 123456789 })?.getTime(), 1700000000123);
  assert.equal(dateFromTimestamp(null), undefined);
  assert.throws(() => dateFromTimestamp({ seconds: '1', nanos: 1_000_000_000 }), RangeError);
  assert.throws(() => dateFromTimestamp({ seconds: 'x', nanos: 0 }), RangeError);
  assert.throws(() => timestampFromDate(new Date(Number.NaN)), RangeError);
});

const genDir = path.resolve(import.meta.dirname, '../src/gen');
test('every generated file loads under Node type stripping', {
  skip: existsSync(genDir) ? false : 'src/gen is absent: run npm run generate',
}, async () => {
  const files = readdirSync(genDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 90, `${files.length} files`);
  for (const f of files) await import(pathToFileURL(path.join(genDir, f)).href);
  const { RefusalCode } = await import(pathToFileURL(path.join(genDir, 'hostgate/v1/RefusalCode.ts')).href);
  assert.deepEqual(
    Object.keys(RefusalCode).filter((k) => k !== 'REFUSAL_CODE_UNSPECIFIED'),
    [...refusalCodes()],
  );
});

test('a SocEvent becomes CloudEvents JSON with proto3 JSON data', () => {
  assert.deepEqual(cloudEventFromSocEvent(decodeSocEvent(encodeSocEvent(socEvent))), {
    specversion: '1.0',
    id: 'c-1',
    source: '/hostgate/health-cert-issuer',
    type: 'io.hostgate.attestation.refused.v1',
    subject: 'h-0123',
    time: '2023-11-14T22:13:23.000000003Z',
    datacontenttype: 'application/json',
    dataschema: 'urn:hostgate:v1:SocEventData',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    data: {
      hostId: 'h-0123',
      attestationId: 'a-1',
      verdictId: 'v-1',
      policyClass: 'default',
      policyVersion: 2,
      refusals: [
        {
          code: 'EVENTLOG_MISMATCH',
          message: 'PCR 4 (sha256) replays to 3f…, the quote says 9a…',
          details: { pcr: '4', event_index: '12' },
        },
      ],
      certificateSerial: '1f2e',
      certificateNotAfter: '2023-11-14T23:13:20.000000009Z',
      revoked: [
        { serial: '7a3', revokedAt: '2023-11-14T22:15:00.000000005Z', reason: 'attestation refused' },
      ],
      actor: 'ops@example',
    },
  });
  // Defaults are left out; the attributes CloudEvents requires are always there.
  assert.deepEqual(
    cloudEventFromSocEvent(decodeSocEvent(encodeSocEvent({ id: 'x', source: '/s', type: 't' }))),
    {
      specversion: '1.0',
      id: 'x',
      source: '/s',
      type: 't',
    },
  );
  assert.equal(rfc3339({ seconds: '0', nanos: 0 }), '1970-01-01T00:00:00Z');
  assert.equal(rfc3339({ seconds: '0', nanos: 120_000_000 }), '1970-01-01T00:00:00.120Z');
  assert.equal(rfc3339({ seconds: '-1', nanos: 5000 }), '1969-12-31T23:59:59.000005Z');
});

// One sample of each Kafka payload with every field set to a non-default value, in the decoded
// (__Output) shape: longs as decimal strings, bytes as Buffer, enums as names, oneof and proto3
// optional virtual fields present. Values are chosen to stress the conversions: uint64 max,
// int64 above 2^53, uint32 max, event types above 2^31.
import type { KafkaPayloadName } from '../src/codec.ts';
import type {
  CertificateEvent__Output,
  CertifiedKey__Output,
  DeadLetter__Output,
  Evidence__Output,
  HealthCertificate__Output,
  Measurements__Output,
  QuoteInfo__Output,
  Refusal__Output,
  RevokedCertificate__Output,
  SocEvent__Output,
  TpmQuote__Output,
  Verdict__Output,
} from '../src/index.ts';

export const bytes = (length: number, fill: number): Buffer => Buffer.alloc(length, fill);
const ts = (seconds: string, nanos: number) => ({ seconds, nanos });

const quoteInfo: QuoteInfo__Output = {
  clock: '18446744073709551615',
  resetCount: 4294967295,
  restartCount: 2,
  safe: true,
  firmwareVersion: '2314885531079327795',
  pcrSelection: [{ hashAlgorithm: 'HASH_ALGORITHM_SHA1', pcrs: [0, 1, 7] }],
  pcrDigest: bytes(32, 0xd1),
  pcrDigestAlgorithm: 'HASH_ALGORITHM_SHA256',
  akName: bytes(34, 0xa0),
};
const quote: TpmQuote__Output = {
  attest: bytes(129, 0xff),
  signature: bytes(72, 0x30),
  pcrBanks: [
    {
      hashAlgorithm: 'HASH_ALGORITHM_SHA256',
      pcrs: [
        { index: 0, digest: bytes(32, 1) },
        { index: 23, digest: bytes(32, 2) },
      ],
    },
  ],
};
const certifiedKey: CertifiedKey__Output = {
  keyPublic: bytes(88, 0x23),
  certifyAttest: bytes(100, 0xff),
  certifySignature: bytes(72, 0x31),
};
const refusal: Refusal__Output = {
  code: 'EVENTLOG_MISMATCH',
  message: 'PCR 4 (sha256) replays to 3f…, the quote says 9a…',
  details: { pcr: '4', event_index: '12' },
};
const revoked: RevokedCertificate__Output = {
  serial: '7a3',
  revokedAt: ts('1700000100', 5),
  reason: 'attestation refused',
};
const certificate: HealthCertificate__Output = {
  serial: '1f2e',
  hostId: 'h-0123',
  der: bytes(400, 0x30),
  notBefore: ts('1700000000', 7),
  notAfter: ts('1700003600', 999999999),
  policyClass: 'default',
  policyVersion: 3,
  verdictId: 'v-1',
  attestationId: 'a-1',
  pcrDigest: bytes(32, 0xd1),
  status: 'CERTIFICATE_STATUS_REVOKED',
  revokedAt: ts('1700000100', 8),
  revocationReason: 'operator',
};

export const evidence: Evidence__Output = {
  attestationId: 'a-1',
  hostId: 'h-0123',
  receivedAt: ts('1700000000', 123000000),
  nonce: bytes(32, 0x4e),
  quote,
  quoteInfo,
  eventLog: bytes(70_000, 0xee),
  certifiedKey,
  akPublic: bytes(90, 0x22),
};

export const measurements: Measurements__Output = {
  attestationId: 'a-1',
  hostId: 'h-0123',
  replayedAt: ts('-62135596800', 1),
  replay: {
    match: true,
    pcrs: [
      {
        hashAlgorithm: 'HASH_ALGORITHM_SHA384',
        pcr: 4,
        quoted: bytes(48, 1),
        replayed: bytes(48, 2),
        match: true,
        eventIndices: [3, 9],
      },
    ],
    eventsAtFault: [3, 9],
    pcr0Locality: 3,
    warnings: [{ code: 'startup-locality-late', eventIndex: 2, message: 'late' }],
  },
  pcrBanks: quote.pcrBanks,
  events: [
    {
      index: 9,
      offset: 8 * 1024 * 1024,
      pcr: 4,
      eventType: 0x80000003,
      eventTypeName: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      digests: [{ hashAlgorithm: 'HASH_ALGORITHM_SM3_256', digest: bytes(32, 9) }],
      verified: true,
      decoded: {
        kind: 'boot-application',
        variableName: 'SecureBoot',
        variableGuid: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
        imagePath: '\\EFI\\BOOT\\BOOTX64.EFI',
        secureBoot: true,
        _secureBoot: 'secureBoot',
        description: 'grub_cmd: linux /vmlinuz ro quiet — ✓',
      },
    },
  ],
  secureBoot: {
    enabled: true,
    _enabled: 'enabled',
    eventIndex: 5,
    _eventIndex: 'eventIndex',
    verified: true,
  },
  dbx: [bytes(32, 0xdb)],
  dbxEventIndex: 6,
  _dbxEventIndex: 'dbxEventIndex',
  bootApplications: [{ digest: bytes(32, 0xba), path: '/EFI/ubuntu/shimx64.efi', eventIndex: 9 }],
  quoteInfo,
  certifiedKey,
  akPublic: bytes(90, 0x22),
  refusals: [refusal],
};

export const verdict: Verdict__Output = {
  verdictId: 'v-1',
  attestationId: 'a-1',
  hostId: 'h-0123',
  pass: true,
  hostClass: 'gpu-node-gen3',
  policyVersion: 4294967295,
  failedRules: [
    {
      ruleId: 'sb',
      kind: 'secure-boot-enabled',
      pass: true,
      code: 'SECURE_BOOT_OFF',
      reason: 'SECURE_BOOT_DISABLED',
      expected: 'true',
      observed: 'false',
      eventIndex: 1,
      _eventIndex: 'eventIndex',
      eventIndices: [0, 1],
      message: 'Secure Boot is off',
    },
  ],
  passedRuleIds: ['pcr0'],
  refusals: [refusal, { code: 'NO_POLICY', message: 'no active golden set', details: { class: 'x' } }],
  message: 'refused',
  evaluatedAt: ts('1700000001', 1),
  quoteInfo,
  certifiedKey,
  akPublic: bytes(90, 0x22),
};

export const certificateEvent: CertificateEvent__Output = {
  eventId: 'e-1',
  type: 'CERTIFICATE_EVENT_TYPE_REFUSED',
  hostId: 'h-0123',
  attestationId: 'a-1',
  verdictId: 'v-1',
  certificate,
  refusals: [refusal],
  revoked: [revoked],
  time: ts('1700000002', 2),
  actor: 'ops@example',
};

export const socEvent: SocEvent__Output = {
  id: 'c-1',
  source: '/hostgate/health-cert-issuer',
  specVersion: '1.0',
  type: 'io.hostgate.attestation.refused.v1',
  subject: 'h-0123',
  time: ts('1700000003', 3),
  dataContentType: 'application/json',
  dataSchema: 'urn:hostgate:v1:SocEventData',
  traceParent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  data: {
    hostId: 'h-0123',
    attestationId: 'a-1',
    verdictId: 'v-1',
    policyClass: 'default',
    policyVersion: 2,
    refusals: [refusal],
    certificateSerial: '1f2e',
    certificateNotAfter: ts('1700003600', 9),
    revoked: [revoked],
    actor: 'ops@example',
  },
};

export const deadLetter: DeadLetter__Output = {
  topic: 'hostgate.evidence.v1',
  partition: 2147483647,
  offset: '9007199254740993',
  key: Buffer.from('h-0123'),
  value: bytes(10, 0xff),
  headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  consumerGroup: 'eventlog-replayer',
  errorCode: 'PROTO_DECODE',
  reason: 'malformed at byte 3',
  attempts: 1,
  time: ts('1700000004', 4),
};

/** The samples above by payload name. */
export const samples: Record<KafkaPayloadName, object> = {
  Evidence: evidence,
  Measurements: measurements,
  Verdict: verdict,
  CertificateEvent: certificateEvent,
  SocEvent: socEvent,
  DeadLetter: deadLetter,
};

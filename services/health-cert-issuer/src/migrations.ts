// Schema of the health-cert-issuer store, in order; an applied migration is never edited (checksummed).
import type { Migration } from '@hostgate/service-runtime';

export const migrations: readonly Migration[] = [
  {
    id: '0001_issuer',
    sql: `
-- The development CA, generated on first start (one row). Unused when caCertFile/caKeyFile are set.
CREATE TABLE ca (
  id integer PRIMARY KEY CHECK (id = 1),
  certificate_pem text NOT NULL,
  private_key_pem text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every certificate issued; at most one per attestation (redelivered verdicts find it here).
CREATE TABLE certificates (
  serial text PRIMARY KEY,
  host_id text NOT NULL,
  attestation_id text NOT NULL UNIQUE,
  verdict_id text NOT NULL,
  policy_class text NOT NULL,
  policy_version integer NOT NULL,
  pcr_digest bytea NOT NULL,
  der bytea NOT NULL,
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  issued_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revocation_reason text
);
CREATE INDEX certificates_live_by_host ON certificates (host_id, not_after) WHERE revoked_at IS NULL;
CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_newest ON certificates (issued_at DESC, serial DESC);

-- CRL numbers must grow with every CRL (RFC 5280 5.2.3), across replicas.
CREATE TABLE crl_number (
  id integer PRIMARY KEY CHECK (id = 1),
  value bigint NOT NULL
);
INSERT INTO crl_number (id, value) VALUES (1, 0);

-- One outcome per attestation and the messages it published, re-published as they are on redelivery.
CREATE TABLE attestations (
  attestation_id text PRIMARY KEY,
  host_id text NOT NULL,
  verdict_id text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('issued', 'refused')),
  serial text,
  decided_at timestamptz NOT NULL
);
CREATE TABLE outbox (
  attestation_id text NOT NULL REFERENCES attestations (attestation_id),
  seq integer NOT NULL,
  topic text NOT NULL,
  message_key text NOT NULL,
  value bytea NOT NULL,
  headers jsonb NOT NULL,
  PRIMARY KEY (attestation_id, seq)
);

-- Fleet state: the health of every host seen, what CheckHost and WatchFleet answer.
CREATE TABLE hosts (
  host_id text PRIMARY KEY,
  healthy boolean NOT NULL,
  cause text NOT NULL,
  reason text NOT NULL,
  reason_code text NOT NULL,
  refusals jsonb NOT NULL,
  serial text,
  expires_at timestamptz,
  policy_class text NOT NULL,
  policy_version integer NOT NULL,
  attestation_id text NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX hosts_expiring ON hosts (expires_at) WHERE healthy;

-- Operator actions (RevokeHost): who, what, when.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  host_id text NOT NULL,
  detail jsonb NOT NULL
);
`,
  },
  {
    id: '0002_hosts_changed',
    // Replicas poll hosts by updated_at to tell their watchers what the others changed.
    sql: 'CREATE INDEX hosts_updated ON hosts (updated_at);',
  },
];

// Schema of the quote-collector store, in order; an applied migration is never edited (checksummed).
// Times are epoch milliseconds (int8) from the service's clock, so tests can move time and both
// adapters (PGlite, pg) read them back the same way (bigint).
import type { Migration } from '@hostgate/service-runtime';

export const migrations: readonly Migration[] = [
  {
    id: '0001_hosts',
    sql: `
CREATE TABLE hosts (
  host_id text PRIMARY KEY,
  state text NOT NULL CHECK (state IN ('PENDING_ACTIVATION', 'ACTIVE', 'DISABLED')),
  ek_public bytea NOT NULL,
  ek_certificate bytea NOT NULL,
  ek_certificate_issuer text NOT NULL,
  ak_public bytea,
  ak_name bytea UNIQUE,
  enrolled_at_ms bigint NOT NULL,
  activated_at_ms bigint,
  last_attested_at_ms bigint,
  state_reason text NOT NULL DEFAULT ''
);`,
  },
  {
    id: '0002_enrollments',
    sql: `
CREATE TABLE enrollments (
  enrollment_id text PRIMARY KEY,
  host_id text NOT NULL REFERENCES hosts (host_id),
  ak_public bytea NOT NULL,
  ak_name bytea NOT NULL,
  secret_digest bytea NOT NULL,
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  activated_at_ms bigint
);
CREATE INDEX enrollments_ak_name ON enrollments (ak_name);`,
  },
  {
    id: '0003_nonces',
    sql: `
CREATE TABLE nonces (
  nonce bytea PRIMARY KEY,
  ak_name bytea NOT NULL,
  issued_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  used_at_ms bigint
);
CREATE INDEX nonces_expires ON nonces (expires_at_ms);`,
  },
  {
    id: '0004_counters',
    sql: `
CREATE TABLE counters (
  host_id text PRIMARY KEY REFERENCES hosts (host_id),
  reset_count bigint NOT NULL,
  restart_count bigint NOT NULL,
  clock numeric(20, 0) NOT NULL,
  safe boolean NOT NULL,
  firmware_version numeric(20, 0) NOT NULL,
  quote_info text NOT NULL,
  updated_at_ms bigint NOT NULL
);`,
  },
  {
    id: '0005_attestations',
    sql: `
CREATE TABLE attestations (
  attestation_id text PRIMARY KEY,
  host_id text NOT NULL,
  created_at_ms bigint NOT NULL,
  outcome text NOT NULL DEFAULT 'PENDING' CHECK (outcome IN ('PENDING', 'ISSUED', 'REFUSED')),
  certificate_event bytea,
  completed_at_ms bigint
);
CREATE INDEX attestations_host ON attestations (host_id, created_at_ms);`,
  },
  {
    id: '0006_audit',
    sql: `
-- Every operator action (SetHostState): who, what, when.
CREATE TABLE audit (
  id bigserial PRIMARY KEY,
  at_ms bigint NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  host_id text NOT NULL,
  details text NOT NULL
);
CREATE INDEX audit_host ON audit (host_id, id);`,
  },
  {
    id: '0007_nonces_live_per_ak',
    sql: `
-- GetChallenge counts an AK's live nonces (the per-AK cap) on every call; without this index that
-- count read every nonce of every host still in the table (a fleet bench: ~900 rows per call).
CREATE INDEX nonces_live_ak ON nonces (ak_name, expires_at_ms) WHERE used_at_ms IS NULL;`,
  },
];

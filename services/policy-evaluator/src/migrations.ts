// Schema of the policy-evaluator store, in order; an applied migration is never edited (checksummed).
import type { Migration } from '@hostgate/service-runtime';

export const migrations: readonly Migration[] = [
  {
    id: '0001_policy',
    sql: `
      -- Published golden sets: (class, version) never changes once inserted; rules as the policy library's JSON.
      CREATE TABLE golden_sets (
        host_class text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        description text NOT NULL DEFAULT '',
        rules jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        PRIMARY KEY (host_class, version)
      );
      -- Immutable in the store itself, not only in code: no UPDATE or DELETE of a published set.
      CREATE FUNCTION golden_sets_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'golden set % v% is published and immutable', OLD.host_class, OLD.version;
      END $$;
      CREATE TRIGGER golden_sets_immutable BEFORE UPDATE OR DELETE ON golden_sets
        FOR EACH ROW EXECUTE FUNCTION golden_sets_immutable();
      -- The one active version of a class (no row: no active set, hosts refused NO_POLICY).
      CREATE TABLE activations (
        host_class text PRIMARY KEY,
        version integer NOT NULL,
        activated_at timestamptz NOT NULL,
        activated_by text NOT NULL,
        FOREIGN KEY (host_class, version) REFERENCES golden_sets (host_class, version)
      );
      -- Hosts outside "default".
      CREATE TABLE host_classes (
        host_id text PRIMARY KEY,
        host_class text NOT NULL,
        assigned_at timestamptz NOT NULL,
        assigned_by text NOT NULL
      );
      -- One verdict per attestation: a redelivered Measurements gets this verdict again.
      CREATE TABLE verdicts (
        attestation_id text PRIMARY KEY,
        verdict_id text NOT NULL UNIQUE,
        host_id text NOT NULL,
        pass boolean NOT NULL,
        host_class text NOT NULL,
        policy_version integer NOT NULL,
        evaluated_at timestamptz NOT NULL,
        verdict bytea NOT NULL
      );
      CREATE INDEX verdicts_by_host ON verdicts (host_id, evaluated_at DESC, attestation_id);
      -- Each host's newest measurements that replayed (Capture and Evaluate by host read them).
      CREATE TABLE host_measurements (
        host_id text PRIMARY KEY,
        attestation_id text NOT NULL,
        replayed_at timestamptz NOT NULL,
        measurements bytea NOT NULL
      );
      -- Every admin call: who, what, when.
      CREATE TABLE audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        details jsonb NOT NULL
      );
    `,
  },
  {
    id: '0002_verdict_order',
    sql: `
      -- Verdicts of one host in the order they were stored (two within one millisecond stay ordered).
      ALTER TABLE verdicts ADD COLUMN seq bigserial;
      DROP INDEX verdicts_by_host;
      CREATE INDEX verdicts_by_host ON verdicts (host_id, seq DESC);
    `,
  },
];

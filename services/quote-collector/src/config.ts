// quote-collector configuration: the common keys plus its own, under HOSTGATE_QUOTE_COLLECTOR_
// (the EK roots keep the name the design gives them, HOSTGATE_EK_ROOTS).
import {
  address,
  type ConfigOf,
  commonConfig,
  type Field,
  integer,
  optionalString,
} from '@hostgate/service-runtime';
import { type PcrSelection, parsePcrList } from '@hostgate/tpm2-js-lite';

export const SERVICE_NAME = 'quote-collector';

/** Default gRPC listen address (loopback: put a proxy or mesh in front to expose it). */
export const DEFAULT_ADDRESS = '127.0.0.1:50051';

/** PCRs every quote must cover by default: the SRTM boot chain (firmware to boot loader). */
export const DEFAULT_PCR_SELECTION = 'sha256:0,1,2,3,4,5,6,7';

/** A PCR list in tpm2-tools syntax (`sha256:0,1,2+sha1:0`), validated when the config loads. */
function pcrList(def: string, doc: string): Field<string> {
  return {
    kind: 'PCR list',
    default: def,
    doc,
    parse(raw: unknown): string {
      if (typeof raw !== 'string') throw new Error('expected a PCR list such as sha256:0,1,2');
      const selections = parsePcrList(raw);
      const banks = new Set(selections.map((s) => s.hashAlg));
      if (banks.size !== selections.length) throw new Error('each bank may appear once');
      return raw.trim();
    },
  };
}

export const configSchema = {
  ...commonConfig,
  address: address(DEFAULT_ADDRESS, 'gRPC listen address (host:port; port 0 picks a free one)'),
  ekRoots: optionalString(
    'EK certificate trust anchors: PEM files (each may hold several certificates), colon-separated; enrollment is refused EK_CERT_UNTRUSTED when unset',
    { env: 'HOSTGATE_EK_ROOTS' },
  ),
  nonceTtlMs: integer(60_000, 'how long a challenge nonce stays valid', { min: 1_000, max: 3_600_000 }),
  enrollmentTtlMs: integer(300_000, 'how long a credential-activation challenge may be answered', {
    min: 1_000,
    max: 86_400_000,
  }),
  attestTimeoutMs: integer(30_000, 'how long Attest waits for the certificate or the refusal downstream', {
    min: 100,
    max: 600_000,
  }),
  pcrSelection: pcrList(DEFAULT_PCR_SELECTION, 'PCRs every quote must cover, exactly (tpm2-tools syntax)'),
  adminToken: optionalString(
    'when set, operator calls that change the registry (SetHostState) need the metadata "authorization: Bearer <token>"; unset: loopback callers only',
  ),
};

export type QuoteCollectorConfig = ConfigOf<typeof configSchema>;

/** The parsed `pcrSelection` of a loaded config. */
export function requiredPcrSelection(config: Pick<QuoteCollectorConfig, 'pcrSelection'>): PcrSelection[] {
  return parsePcrList(config.pcrSelection);
}

// TPM_ALG_ID values for the hash banks an event log may carry (TPM 2.0 Part 2, 6.3).

/** Name of a PCR bank as used in outputs: sha1, sha256, sha384, sha512, sm3_256, or alg_0xNNNN. */
export type BankName = string;

/** A digest algorithm the log declares. */
export interface BankInfo {
  /** Display name (sha1, sha256, ...). */
  readonly name: BankName;
  /** TPM_ALG_ID. */
  readonly algId: number;
  /** Digest size in bytes, as declared in the Spec ID event (or 20 for SHA-1 logs). */
  readonly digestSize: number;
}

export const KNOWN_ALGORITHMS: ReadonlyMap<number, { name: BankName; digestSize: number }> = new Map([
  [0x0004, { name: 'sha1', digestSize: 20 }],
  [0x000b, { name: 'sha256', digestSize: 32 }],
  [0x000c, { name: 'sha384', digestSize: 48 }],
  [0x000d, { name: 'sha512', digestSize: 64 }],
  [0x0012, { name: 'sm3_256', digestSize: 32 }],
  [0x0027, { name: 'sha3_256', digestSize: 32 }],
  [0x0028, { name: 'sha3_384', digestSize: 48 }],
  [0x0029, { name: 'sha3_512', digestSize: 64 }],
]);

export const ALG_SHA1 = 0x0004;

/** Look up a bank by name among the known algorithms. */
export function algIdByName(name: string): number | undefined {
  for (const [id, a] of KNOWN_ALGORITHMS) if (a.name === name) return id;
  return undefined;
}

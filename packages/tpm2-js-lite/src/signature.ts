// TPMT_SIGNATURE (TPM 2.0 Part 2 §11.3.4), as TPM2_Quote returns it and `tpm2_quote -s` writes it.
import { ByteReader, ByteWriter } from './bytes.ts';
import { HASH_BY_ALG, LIMITS, TPM_ALG } from './constants.ts';
import { Tpm2Error } from './errors.ts';

export type TpmtSignature =
  | { kind: 'rsa'; sigAlg: number; hashAlg: number; sig: Uint8Array }
  | { kind: 'ecc'; sigAlg: number; hashAlg: number; r: Uint8Array; s: Uint8Array }
  | { kind: 'hmac'; sigAlg: number; hashAlg: number; digest: Uint8Array }
  | { kind: 'null'; sigAlg: number };

const RSA_SIG = new Set<number>([TPM_ALG.RSASSA, TPM_ALG.RSAPSS]);
const ECC_SIG = new Set<number>([TPM_ALG.ECDSA, TPM_ALG.ECDAA, TPM_ALG.SM2, TPM_ALG.ECSCHNORR]);

export function readSignature(r: ByteReader): TpmtSignature {
  const algAt = r.offset;
  const sigAlg = r.u16('sigAlg');
  if (sigAlg === TPM_ALG.NULL) return { kind: 'null', sigAlg };
  if (!RSA_SIG.has(sigAlg) && !ECC_SIG.has(sigAlg) && sigAlg !== TPM_ALG.HMAC) {
    throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `${r.what}: sigAlg 0x${sigAlg.toString(16)}`, algAt);
  }
  const hashAt = r.offset;
  const hashAlg = r.u16('hash');
  const hash = HASH_BY_ALG.get(hashAlg);
  if (hash === undefined) {
    throw new Tpm2Error(
      'UNSUPPORTED_ALGORITHM',
      `${r.what}: signature hash 0x${hashAlg.toString(16)}`,
      hashAt,
    );
  }
  if (RSA_SIG.has(sigAlg))
    return { kind: 'rsa', sigAlg, hashAlg, sig: r.tpm2b('signature.rsa', LIMITS.rsaKey) };
  if (sigAlg === TPM_ALG.HMAC)
    return { kind: 'hmac', sigAlg, hashAlg, digest: r.take(hash.size, 'hmac digest') };
  const sr = r.tpm2b('signatureR', LIMITS.eccParameter);
  return { kind: 'ecc', sigAlg, hashAlg, r: sr, s: r.tpm2b('signatureS', LIMITS.eccParameter) };
}

export function unmarshalSignature(bytes: Uint8Array): TpmtSignature {
  const r = new ByteReader(bytes, 'TPMT_SIGNATURE');
  const sig = readSignature(r);
  r.expectEnd();
  return sig;
}

export function writeSignature(w: ByteWriter, s: TpmtSignature): ByteWriter {
  w.u16(s.sigAlg);
  switch (s.kind) {
    case 'null':
      return w;
    case 'rsa':
      return w.u16(s.hashAlg).tpm2b(s.sig);
    case 'hmac':
      return w.u16(s.hashAlg).bytes(s.digest);
    case 'ecc':
      return w.u16(s.hashAlg).tpm2b(s.r).tpm2b(s.s);
  }
}

export function marshalSignature(s: TpmtSignature): Uint8Array {
  return writeSignature(new ByteWriter(), s).finish();
}

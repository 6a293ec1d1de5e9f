// A software stand-in for a TPM's attestation key, for tests and benchmarks: keys from node:crypto, quotes and
// certifications marshaled exactly as a TPM marshals them. Not for production: nothing here is in a TPM.
import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { type TpmsAttest, marshalAttest } from './attest.ts';
import { concatBytes } from './bytes.ts';
import {
  HASH_ALG,
  type HashName,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST,
  TPMA,
} from './constants.ts';
import { digest, objectName } from './crypto.ts';
import { type PcrSelection, type PcrValueMap, pcrSelection, selectedPcrs } from './pcr.ts';
import { marshalTpmtPublic, type TpmPublic } from './public.ts';
import { marshalSignature, type TpmtSignature } from './signature.ts';

export type SoftwareKeyKind = 'rsa2048' | 'rsa3072' | 'p256' | 'p384';

export interface SoftwareAk {
  privateKey: KeyObject;
  publicKey: KeyObject;
  public: TpmPublic;
  /** Marshaled TPMT_PUBLIC. */
  publicBytes: Uint8Array;
  name: Uint8Array;
  hash: HashName;
  sigAlg: number;
}

const AK_ATTRIBUTES =
  TPMA.fixedTPM |
  TPMA.fixedParent |
  TPMA.sensitiveDataOrigin |
  TPMA.userWithAuth |
  TPMA.restricted |
  TPMA.sign;

const fromB64 = (s: string | undefined) => new Uint8Array(Buffer.from(s ?? '', 'base64url'));

/** A restricted signing key shaped like `tpm2_createak` output (RSASSA or RSAPSS / ECDSA). */
export function softwareAk(
  kind: SoftwareKeyKind,
  opts: { hash?: HashName; rsaScheme?: 'rsassa' | 'rsapss'; attributes?: number } = {},
): SoftwareAk {
  const hash = opts.hash ?? (kind === 'p384' ? 'sha384' : 'sha256');
  const objectAttributes = opts.attributes ?? AK_ATTRIBUTES;
  const common = { nameAlg: TPM_ALG.SHA256, objectAttributes, authPolicy: new Uint8Array(0) };
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  let pub: TpmPublic;
  let sigAlg: number;
  if (kind === 'rsa2048' || kind === 'rsa3072') {
    pair = generateKeyPairSync('rsa', { modulusLength: kind === 'rsa2048' ? 2048 : 3072 });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    sigAlg = opts.rsaScheme === 'rsapss' ? TPM_ALG.RSAPSS : TPM_ALG.RSASSA;
    const modulus = fromB64(jwk.n);
    pub = {
      type: 'rsa',
      ...common,
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: sigAlg, hashAlg: HASH_ALG[hash] },
      keyBits: modulus.length * 8,
      exponent: 0,
      modulus,
    };
  } else {
    pair = generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'prime256v1' : 'secp384r1' });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    sigAlg = TPM_ALG.ECDSA;
    pub = {
      type: 'ecc',
      ...common,
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: sigAlg, hashAlg: HASH_ALG[hash] },
      curveId: kind === 'p256' ? TPM_ECC_CURVE.NIST_P256 : TPM_ECC_CURVE.NIST_P384,
      kdf: { scheme: TPM_ALG.NULL },
      x: fromB64(jwk.x),
      y: fromB64(jwk.y),
    };
  }
  const publicBytes = marshalTpmtPublic(pub);
  return { ...pair, public: pub, publicBytes, name: objectName(publicBytes), hash, sigAlg };
}

/** Signs `message` as the TPM would with the key's scheme, returning the TPMT_SIGNATURE. */
export function softwareSign(ak: SoftwareAk, message: Uint8Array): TpmtSignature {
  const hashAlg = HASH_ALG[ak.hash];
  if (ak.public.type === 'rsa') {
    const padding =
      ak.sigAlg === TPM_ALG.RSAPSS ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
    // The TPM uses a salt as long as the digest (Part 1 §B.7).
    const saltLength = constants.RSA_PSS_SALTLEN_DIGEST;
    const sig = new Uint8Array(sign(ak.hash, message, { key: ak.privateKey, padding, saltLength }));
    return { kind: 'rsa', sigAlg: ak.sigAlg, hashAlg, sig };
  }
  // The bare KeyObject: an options object ({ key, dsaEncoding }) costs node two key-slot lookups
  // and brand checks per call, 3× the signature itself (114 vs 37 µs per P-256 sign here).
  const size = ak.public.type === 'ecc' && ak.public.curveId === TPM_ECC_CURVE.NIST_P384 ? 48 : 32;
  const [r, s] = ecdsaRs(sign(ak.hash, message, ak.privateKey), size);
  return { kind: 'ecc', sigAlg: TPM_ALG.ECDSA, hashAlg, r, s };
}

/** r and s of a DER ECDSA-Sig-Value { r INTEGER, s INTEGER }, each unsigned and left-padded to `size` bytes. */
export function ecdsaRs(der: Uint8Array, size: number): [Uint8Array, Uint8Array] {
  let at = 0;
  const byte = (): number => {
    if (at >= der.length) throw new RangeError(`ECDSA signature: truncated at byte ${at}`);
    return der[at++]!;
  };
  const length = (): number => {
    const first = byte();
    if (first < 0x80) return first;
    if (first !== 0x81) throw new RangeError(`ECDSA signature: unsupported length form at byte ${at - 1}`);
    return byte();
  };
  const integer = (): Uint8Array => {
    if (byte() !== 0x02) throw new RangeError(`ECDSA signature: INTEGER expected at byte ${at - 1}`);
    const len = length();
    if (len === 0 || at + len > der.length)
      throw new RangeError(`ECDSA signature: bad INTEGER length at byte ${at}`);
    let value = der.subarray(at, at + len);
    at += len;
    while (value.length > 0 && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new RangeError(`ECDSA signature: INTEGER longer than ${size} bytes`);
    const out = new Uint8Array(size);
    out.set(value, size - value.length);
    return out;
  };
  if (byte() !== 0x30) throw new RangeError('ECDSA signature: SEQUENCE expected at byte 0');
  const body = length();
  if (at + body !== der.length)
    throw new RangeError(`ECDSA signature: SEQUENCE length ${body} does not fit ${der.length} bytes`);
  const r = integer();
  const s = integer();
  if (at !== der.length) throw new RangeError(`ECDSA signature: ${der.length - at} trailing bytes`);
  return [r, s];
}

function header(ak: SoftwareAk, type: number, nonce: Uint8Array, clock?: Partial<TpmsAttest['clockInfo']>) {
  return {
    magic: TPM_GENERATED_VALUE,
    type,
    qualifiedSigner: ak.name,
    extraData: nonce,
    clockInfo: {
      clock: clock?.clock ?? 123_456_789n,
      resetCount: clock?.resetCount ?? 3,
      restartCount: clock?.restartCount ?? 1,
      safe: clock?.safe ?? true,
    },
    firmwareVersion: 0x2019_0827_0000_0001n,
  };
}

export interface SoftwareAttestation {
  attest: Uint8Array;
  signature: Uint8Array;
  parsedSignature: TpmtSignature;
}

/** A TPM2_Quote over `selection` (default: every PCR in `pcrs`), digest with the AK's signing hash. */
export function softwareQuote(opts: {
  ak: SoftwareAk;
  nonce: Uint8Array;
  pcrs: PcrValueMap;
  selection?: PcrSelection[];
  clock?: Partial<TpmsAttest['clockInfo']>;
}): SoftwareAttestation {
  const selection =
    opts.selection ?? [...opts.pcrs.entries()].map(([hash, bank]) => pcrSelection(hash, [...bank.keys()]));
  const values: Uint8Array[] = [];
  for (const sel of selection) {
    const bank = [...opts.pcrs.entries()].find(([h]) => HASH_ALG[h] === sel.hashAlg)?.[1];
    for (const pcr of selectedPcrs(sel.select)) {
      const v = bank?.get(pcr);
      if (v === undefined) throw new RangeError(`no value for PCR ${pcr}`);
      values.push(v);
    }
  }
  const attest = marshalAttest({
    ...header(opts.ak, TPM_ST_ATTEST.QUOTE, opts.nonce, opts.clock),
    attested: {
      kind: 'quote',
      pcrSelect: selection,
      pcrDigest: digest(HASH_ALG[opts.ak.hash], concatBytes(...values)),
    },
  });
  const parsedSignature = softwareSign(opts.ak, attest);
  return { attest, signature: marshalSignature(parsedSignature), parsedSignature };
}

/** A TPM2_Certify of `certified` (TPMT_PUBLIC bytes) by the AK. */
export function softwareCertify(opts: {
  ak: SoftwareAk;
  nonce: Uint8Array;
  certified: Uint8Array;
}): SoftwareAttestation {
  const name = objectName(opts.certified);
  const attest = marshalAttest({
    ...header(opts.ak, TPM_ST_ATTEST.CERTIFY, opts.nonce),
    attested: { kind: 'certify', name, qualifiedName: name },
  });
  const parsedSignature = softwareSign(opts.ak, attest);
  return { attest, signature: marshalSignature(parsedSignature), parsedSignature };
}

/** PCR values for tests: bank → pcr → H(label ‖ pcr). */
export function samplePcrs(hash: HashName, pcrs: number[], label = 'pcr'): PcrValueMap {
  const bank = new Map<number, Uint8Array>();
  for (const pcr of pcrs) bank.set(pcr, digest(HASH_ALG[hash], new TextEncoder().encode(`${label}${pcr}`)));
  return new Map([[hash, bank]]);
}

// TPMS_ATTEST (TPM 2.0 Part 2 §10.12): the structure TPM2_Quote and TPM2_Certify sign.
import { ByteReader, ByteWriter } from './bytes.ts';
import { LIMITS, TPM_GENERATED_VALUE, TPM_ST_ATTEST } from './constants.ts';
import { Tpm2Error } from './errors.ts';
import { type PcrSelection, readPcrSelectionList, writePcrSelectionList } from './pcr.ts';

export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}

export interface QuoteInfo {
  kind: 'quote';
  pcrSelect: PcrSelection[];
  pcrDigest: Uint8Array;
}

export interface CertifyInfo {
  kind: 'certify';
  /** Name of the certified object: nameAlg ‖ H(TPMT_PUBLIC). */
  name: Uint8Array;
  qualifiedName: Uint8Array;
}

/** Other attestation types (time, audit, creation, NV) are kept unparsed. */
export interface OtherAttestInfo {
  kind: 'other';
  bytes: Uint8Array;
}

export interface TpmsAttest {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  attested: QuoteInfo | CertifyInfo | OtherAttestInfo;
}

/** Parses a TPMS_ATTEST (the contents of a TPM2B_ATTEST, `tpm2_quote -m`). Untrusted until its signature checks. */
export function unmarshalAttest(bytes: Uint8Array): TpmsAttest {
  if (bytes.length > LIMITS.attest) {
    throw new Tpm2Error(
      'MALFORMED',
      `TPMS_ATTEST of ${bytes.length} bytes exceeds ${LIMITS.attest}`,
      LIMITS.attest,
    );
  }
  const r = new ByteReader(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw new Tpm2Error(
      'BAD_MAGIC',
      `TPMS_ATTEST magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`,
      0,
    );
  }
  const type = r.u16('type');
  const qualifiedSigner = r.tpm2b('qualifiedSigner', LIMITS.name);
  const extraData = r.tpm2b('extraData', LIMITS.data);
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safeAt = r.offset;
  const safeByte = r.u8('clockInfo.safe');
  if (safeByte > 1) r.fail(`clockInfo.safe is ${safeByte}, not YES/NO`, safeAt);
  const firmwareVersion = r.u64('firmwareVersion');
  let attested: TpmsAttest['attested'];
  if (type === TPM_ST_ATTEST.QUOTE) {
    const pcrSelect = readPcrSelectionList(r);
    attested = { kind: 'quote', pcrSelect, pcrDigest: r.tpm2b('pcrDigest', LIMITS.digest) };
  } else if (type === TPM_ST_ATTEST.CERTIFY) {
    const name = r.tpm2b('certify.name', LIMITS.name);
    attested = { kind: 'certify', name, qualifiedName: r.tpm2b('certify.qualifiedName', LIMITS.name) };
  } else if (Object.values(TPM_ST_ATTEST).includes(type as never)) {
    attested = { kind: 'other', bytes: r.rest() };
  } else {
    throw new Tpm2Error(
      'WRONG_TYPE',
      `TPMS_ATTEST type 0x${type.toString(16)} is not an attestation type`,
      4,
    );
  }
  r.expectEnd();
  return {
    magic,
    type,
    qualifiedSigner,
    extraData,
    clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 },
    firmwareVersion,
    attested,
  };
}

export function marshalAttest(a: TpmsAttest): Uint8Array {
  const w = new ByteWriter()
    .u32(a.magic)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion);
  const info = a.attested;
  if (info.kind === 'quote') writePcrSelectionList(w, info.pcrSelect).tpm2b(info.pcrDigest);
  else if (info.kind === 'certify') w.tpm2b(info.name).tpm2b(info.qualifiedName);
  else w.bytes(info.bytes);
  return w.finish();
}

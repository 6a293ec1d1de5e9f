// TPM 2.0 Part 2 §6.6 (TPM_RC): format-0 (VER1, WARN) and format-1 codes with their parameter/handle/session number.

const VER1: Record<number, string> = {
  0: 'INITIALIZE',
  1: 'FAILURE',
  3: 'SEQUENCE',
  11: 'PRIVATE',
  25: 'HMAC',
  32: 'DISABLED',
  33: 'EXCLUSIVE',
  36: 'AUTH_TYPE',
  37: 'AUTH_MISSING',
  38: 'POLICY',
  39: 'PCR',
  40: 'PCR_CHANGED',
  45: 'UPGRADE',
  46: 'TOO_MANY_CONTEXTS',
  47: 'AUTH_UNAVAILABLE',
  48: 'REBOOT',
  49: 'UNBALANCED',
  66: 'COMMAND_SIZE',
  67: 'COMMAND_CODE',
  68: 'AUTHSIZE',
  69: 'AUTH_CONTEXT',
  70: 'NV_RANGE',
  71: 'NV_SIZE',
  72: 'NV_LOCKED',
  73: 'NV_AUTHORIZATION',
  74: 'NV_UNINITIALIZED',
  75: 'NV_SPACE',
  76: 'NV_DEFINED',
  80: 'BAD_CONTEXT',
  81: 'CPHASH',
  82: 'PARENT',
  83: 'NEEDS_TEST',
  84: 'NO_RESULT',
  85: 'SENSITIVE',
};

const FMT1: Record<number, string> = {
  1: 'ASYMMETRIC',
  2: 'ATTRIBUTES',
  3: 'HASH',
  4: 'VALUE',
  5: 'HIERARCHY',
  7: 'KEY_SIZE',
  8: 'MGF',
  9: 'MODE',
  10: 'TYPE',
  11: 'HANDLE',
  12: 'KDF',
  13: 'RANGE',
  14: 'AUTH_FAIL',
  15: 'NONCE',
  16: 'PP',
  18: 'SCHEME',
  21: 'SIZE',
  22: 'SYMMETRIC',
  23: 'TAG',
  24: 'SELECTOR',
  26: 'INSUFFICIENT',
  27: 'SIGNATURE',
  28: 'KEY',
  29: 'POLICY_FAIL',
  31: 'INTEGRITY',
  32: 'TICKET',
  33: 'RESERVED_BITS',
  34: 'BAD_AUTH',
  35: 'EXPIRED',
  36: 'POLICY_CC',
  37: 'BINDING',
  38: 'CURVE',
  39: 'ECC_POINT',
};

const WARN: Record<number, string> = {
  1: 'CONTEXT_GAP',
  2: 'OBJECT_MEMORY',
  3: 'SESSION_MEMORY',
  4: 'MEMORY',
  5: 'SESSION_HANDLES',
  6: 'OBJECT_HANDLES',
  7: 'LOCALITY',
  8: 'YIELDED',
  9: 'CANCELED',
  10: 'TESTING',
  16: 'REFERENCE_H0',
  17: 'REFERENCE_H1',
  18: 'REFERENCE_H2',
  19: 'REFERENCE_H3',
  20: 'REFERENCE_H4',
  21: 'REFERENCE_H5',
  22: 'REFERENCE_H6',
  24: 'REFERENCE_S0',
  25: 'REFERENCE_S1',
  26: 'REFERENCE_S2',
  27: 'REFERENCE_S3',
  28: 'REFERENCE_S4',
  29: 'REFERENCE_S5',
  30: 'REFERENCE_S6',
  32: 'NV_RATE',
  33: 'LOCKOUT',
  34: 'RETRY',
  35: 'NV_UNAVAILABLE',
};

// TSS2 layer numbers (bits 16..23) for codes that did not come from the TPM itself.
const LAYERS: Record<number, string> = {
  6: 'ESAPI',
  7: 'SYS',
  8: 'MU',
  9: 'RESOURCE_MANAGER',
  10: 'TCTI',
  11: 'RESOURCE_MANAGER_TPM',
};

export interface DescribedResponseCode {
  rc: number;
  /** `TPM_RC_<NAME>` of the base code, e.g. `TPM_RC_POLICY_FAIL`; `TPM_RC_UNKNOWN_0x...` if unlisted. */
  name: string;
  format: 0 | 1;
  kind: 'success' | 'error' | 'warning' | 'vendor' | 'tpm1.2' | 'layer';
  /** Format-1 codes: which parameter (1-15), handle (1-7) or session (1-7) was at fault. */
  parameter?: number;
  handle?: number;
  session?: number;
  /** Set for codes from a software layer (resource manager, TCTI). */
  layer?: string;
  /** One human line, e.g. `TPM_RC_POLICY_FAIL (session 1) [0x9d2]`. */
  text: string;
}

function hex(rc: number): string {
  return '0x' + rc.toString(16).padStart(3, '0');
}

/** Decodes a TPM_RC into its name and what it refers to. Total: every 32-bit value gets a description. */
export function describeResponseCode(rcIn: number): DescribedResponseCode {
  const rc = rcIn >>> 0;
  const layerNo = (rc >>> 16) & 0xff;
  const base = rc & 0xffff;
  const layerName = layerNo === 0 ? undefined : (LAYERS[layerNo] ?? `LAYER_${layerNo}`);
  const out = (d: Omit<DescribedResponseCode, 'rc' | 'text'>, where = ''): DescribedResponseCode => {
    const result: DescribedResponseCode = {
      rc,
      ...d,
      text: `${layerName !== undefined ? layerName + ': ' : ''}${d.name}${where} [${hex(rc)}]`,
    };
    if (layerName !== undefined) {
      result.layer = layerName;
      if (d.kind !== 'success') result.kind = 'layer';
    }
    return result;
  };
  if (base === 0) return out({ name: 'TPM_RC_SUCCESS', format: 0, kind: 'success' });
  if (base === 0x01e) return out({ name: 'TPM_RC_BAD_TAG', format: 0, kind: 'error' });
  if (base & 0x080) {
    const error = base & 0x3f;
    const name = 'TPM_RC_' + (FMT1[error] ?? `UNKNOWN_FMT1_${hex(error)}`);
    const n = (base >>> 8) & 0xf;
    if (base & 0x040) return out({ name, format: 1, kind: 'error', parameter: n }, ` (parameter ${n})`);
    if (n === 0) return out({ name, format: 1, kind: 'error' });
    if (n & 0x8) {
      const session = n & 0x7;
      return out({ name, format: 1, kind: 'error', session }, ` (session ${session})`);
    }
    return out({ name, format: 1, kind: 'error', handle: n }, ` (handle ${n})`);
  }
  if ((base & 0x100) === 0) {
    return out({ name: `TPM_RC_TPM12_${hex(base)}`, format: 0, kind: 'tpm1.2' });
  }
  const error = base & 0x7f;
  if (base & 0x400) return out({ name: `TPM_RC_VENDOR_${hex(base)}`, format: 0, kind: 'vendor' });
  if (base & 0x800) {
    return out({
      name: 'TPM_RC_' + (WARN[error] ?? `UNKNOWN_WARN_${hex(error)}`),
      format: 0,
      kind: 'warning',
    });
  }
  return out({ name: 'TPM_RC_' + (VER1[error] ?? `UNKNOWN_${hex(error)}`), format: 0, kind: 'error' });
}

// EK template selection and the EK authorization policies of the TCG EK Credential Profile for TPM Family 2.0
// (v2.3 and later, Annex B: "Computing PolicyA / PolicyC / PolicyB"). Node-free: digests are constants, and the
// policy a session must reach is described as steps the client replays.
//
//   PolicyA = PolicySecret(TPM_RH_ENDORSEMENT)                    (the low-range EK authPolicy, SHA-256)
//   PolicyC = PolicyAuthorizeNV(policy index 0x01C07F01/02/03)    (for SHA-256/384/512)
//   PolicyB = PolicyOR(PolicyA, PolicyC)                           (the high-range EK authPolicy)
//
// ActivateCredential with a high-range EK therefore runs, in a session whose hash is the EK's nameAlg:
// PolicySecret(TPM_RH_ENDORSEMENT) (digest becomes PolicyA), then PolicyOR([PolicyA, PolicyC]) (digest becomes
// PolicyB = the EK's authPolicy). PolicyC only has to be known, never satisfied.
import { bytesEqual, fromHex } from './bytes.ts';
import type { HashName } from './constants.ts';
import { EK_CERT_NV_INDEX } from './ek-cert.ts';
import { ekTemplate, marshalTpmtPublic, type TpmPublic } from './public.ts';

/**
 * The EK templates the agent can ask for:
 * - 'rsa2048': low-range L-1 (RSA 2048, SHA-256, AES-128), certificate at NV 0x01C00002;
 * - 'ecc-p256': low-range L-2 (ECC NIST P-256, SHA-256, AES-128), certificate at NV 0x01C0000A;
 * - 'ecc-p384': high-range ECC NIST P-384 (SHA-384, AES-256, PolicyB), certificate at NV 0x01C00016 — the
 *   profile's template H-3 (H-4 in the profile is P-521 at 0x01C00018).
 */
export type EkTemplateId = 'rsa2048' | 'ecc-p256' | 'ecc-p384';

export const EK_TEMPLATE_IDS: readonly EkTemplateId[] = ['rsa2048', 'ecc-p256', 'ecc-p384'];

/** PolicyA: PolicySecret(TPM_RH_ENDORSEMENT) with an empty policyRef. */
export const EK_POLICY_A: Readonly<Record<'sha256' | 'sha384' | 'sha512', Uint8Array>> = {
  sha256: fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa'),
  sha384: fromHex(
    '8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53',
  ),
  sha512: fromHex(
    '1e3b76502c8a1425aa0b7b3fc646a1b0fae063b03b5368f9c4cddecaff0891dd682bac1a85d4d832b781ea451915de5fc5bf0dc4a1917cd42fa041e3f998e0ee',
  ),
};

/** PolicyC: PolicyAuthorizeNV over the profile's policy NV index for that hash (0x01C07F01/02/03). */
export const EK_POLICY_C: Readonly<Record<'sha256' | 'sha384' | 'sha512', Uint8Array>> = {
  sha256: fromHex('3767e2edd43ff45a3a7e1eaefcef78643dca964632e7aad82c673a30d8633fde'),
  sha384: fromHex(
    'd6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165',
  ),
  sha512: fromHex(
    '589ee1e146544716e8deafe6db247b01b81e9f9c7dd16b814aa159138749105fba5388dd1dea702f35240c184933121e2c61b8f50d3ef91393a49a38c3f73fc8',
  ),
};

/** PolicyB = PolicyOR(PolicyA, PolicyC): the authPolicy of every high-range EK template. */
export const EK_POLICY_B: Readonly<Record<'sha256' | 'sha384' | 'sha512', Uint8Array>> = {
  sha256: fromHex('ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0'),
  sha384: fromHex(
    'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
  ),
  sha512: fromHex(
    'b8221ca69e8550a4914de3faa6a18c072cc01208073a928d5d66d59ef79e49a429c41a6b269571d57edb25fbdb1838425608b413cd616a5f6db5b6071af99bea',
  ),
};

/** What a policy session must do to satisfy an EK's authPolicy. */
export interface EkPolicy {
  /** The session's authHash: the EK's nameAlg. */
  hash: HashName;
  /** PolicyOR branch list to run after PolicySecret(TPM_RH_ENDORSEMENT); absent for the low-range PolicyA. */
  orBranches?: readonly Uint8Array[];
  /** The EK's authPolicy the session ends up with. */
  authPolicy: Uint8Array;
}

export interface EkTemplateInfo {
  id: EkTemplateId;
  /** The profile's name for the template. */
  tcgName: 'L-1' | 'L-2' | 'H-3';
  /** The template as a structure and as the marshaled TPMT_PUBLIC CreatePrimary takes. */
  template: TpmPublic;
  marshaled: Uint8Array;
  /** NV index of the manufacturer's certificate for this EK. */
  certIndex: number;
  policy: EkPolicy;
}

export function ekTemplateInfo(id: EkTemplateId): EkTemplateInfo {
  switch (id) {
    case 'rsa2048': {
      const template = ekTemplate('rsa');
      return {
        id,
        tcgName: 'L-1',
        template,
        marshaled: marshalTpmtPublic(template),
        certIndex: EK_CERT_NV_INDEX.rsa,
        policy: { hash: 'sha256', authPolicy: EK_POLICY_A.sha256 },
      };
    }
    case 'ecc-p256': {
      const template = ekTemplate('ecc');
      return {
        id,
        tcgName: 'L-2',
        template,
        marshaled: marshalTpmtPublic(template),
        certIndex: EK_CERT_NV_INDEX.ecc,
        policy: { hash: 'sha256', authPolicy: EK_POLICY_A.sha256 },
      };
    }
    case 'ecc-p384': {
      const template = ekTemplate('ecc384');
      return {
        id,
        tcgName: 'H-3',
        template,
        marshaled: marshalTpmtPublic(template),
        certIndex: EK_CERT_NV_INDEX.ecc384,
        policy: {
          hash: 'sha384',
          orBranches: [EK_POLICY_A.sha384, EK_POLICY_C.sha384],
          authPolicy: EK_POLICY_B.sha384,
        },
      };
    }
    default:
      throw new RangeError(`unknown EK template ${String(id)}`);
  }
}

/** Accepts the new ids and the older 'rsa' | 'ecc' | 'ecc384' names the client and ek-cert use. */
export function ekTemplateId(name: EkTemplateId | 'rsa' | 'ecc' | 'ecc384'): EkTemplateId {
  if (name === 'rsa') return 'rsa2048';
  if (name === 'ecc') return 'ecc-p256';
  if (name === 'ecc384') return 'ecc-p384';
  if ((EK_TEMPLATE_IDS as readonly string[]).includes(name)) return name;
  throw new RangeError(`unknown EK template ${String(name)}`);
}

/**
 * The policy steps for an EK given its authPolicy and nameAlg (from its public area), so ActivateCredential works
 * with an EK the caller did not create itself. Undefined when the authPolicy is none of the profile's.
 */
export function ekPolicyFor(authPolicy: Uint8Array, hash: HashName): EkPolicy | undefined {
  if (hash === 'sha1') return undefined;
  if (bytesEqual(authPolicy, EK_POLICY_A[hash])) return { hash, authPolicy: EK_POLICY_A[hash] };
  if (bytesEqual(authPolicy, EK_POLICY_B[hash])) {
    return { hash, orBranches: [EK_POLICY_A[hash], EK_POLICY_C[hash]], authPolicy: EK_POLICY_B[hash] };
  }
  return undefined;
}

export { TpmResponseError, TpmTransportError } from './errors.ts';
export type { TransportErrorCode } from './errors.ts';
export { describeResponseCode } from './response-codes.ts';
export type { DescribedResponseCode } from './response-codes.ts';
export {
  EK_POLICY,
  eccAkTemplate,
  eccEkTemplate,
  eccSigningKeyTemplate,
  rsaAkTemplate,
  rsaEkTemplate,
  TPMA_OBJECT,
} from './templates.ts';
export {
  EK_POLICY_A,
  EK_POLICY_B,
  EK_POLICY_C,
  EK_TEMPLATE_IDS,
  ekPolicyFor,
  ekTemplateId,
  ekTemplateInfo,
} from '../ek-templates.ts';
export type { EkPolicy, EkTemplateId, EkTemplateInfo } from '../ek-templates.ts';
export { EK_CERT_NV_INDEX, Tpm, TPM_RH } from './tpm.ts';
export type {
  AttestationResult,
  Authorization,
  CreatedObject,
  HashName,
  NvPublic,
  PcrSelection,
  PcrValues,
} from './tpm.ts';
export {
  checkResponseFrame,
  DeviceTransport,
  MAX_RESPONSE_SIZE,
  openTransport,
  SimulatorTransport,
} from './transport.ts';
export type { Transport, TransportOptions } from './transport.ts';

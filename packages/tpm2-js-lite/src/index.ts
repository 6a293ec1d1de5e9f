export {
  CredentialError,
  CredentialFileError,
  decodeTpm2ToolsCredential,
  encodeTpm2ToolsCredential,
  kdfa,
  kdfe,
  makeCredentialFor,
} from './credential.ts';
export type { CredentialEkKey, CredentialHash, MadeCredential } from './credential.ts';

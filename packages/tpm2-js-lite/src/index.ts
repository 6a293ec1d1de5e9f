export {
  CredentialError,
  CredentialFileError,
  decodeTpm2ToolsCredential,
  ekKeyFromPublic,
  encodeTpm2ToolsCredential,
  kdfa,
  kdfe,
  makeCredential,
  makeCredentialFor,
} from './credential.ts';
export type { CredentialEkKey, CredentialHash, MadeCredential } from './credential.ts';

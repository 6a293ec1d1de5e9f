// Public API of the decoders: event data into meaning, digest checks with the quirk table, one-line summaries.
export type { CertificateInfo, CertificateInspector } from './certificate.ts';
export { subjectCommonName } from './certificate.ts';
export { type DecodeOptions, decodeEvent } from './decode-event.ts';
export { describeDigestCheck, describeEvent } from './describe.ts';
export { type DevicePath, type DevicePathNode, decodeDevicePath } from './device-path.ts';
export { checkEventDigest, hashFromProvider, specPreimage } from './digest-check.ts';
export type { EfiVariable, LoadOption, SbatEntry, VariableContent } from './efi-variable.ts';
export type { FirmwareBlob, HandoffTable, ImageLoad } from './firmware.ts';
export type { GptData, GptHeader, GptPartition } from './gpt.ts';
export { guidName, guidText, KNOWN_GUIDS } from './guid.ts';
export type { IplContent, IplForm } from './ipl.ts';
export type { NoActionContent } from './no-action.ts';
export { DIGEST_QUIRKS, type DigestQuirk } from './quirks.ts';
export type { DecodeError, DecodeErrorCode } from './reader.ts';
export type { SignatureEntry, SignatureList } from './signature-list.ts';
export type { DecodedBody, DecodedEvent, DecodeInput, DigestCheck, HashFunction } from './types.ts';

// The decoded form of one event. Decoding grants no trust: it reads untrusted bytes, and nothing
// here is verified until the event's PCR replays to a quoted value.
import type { EfiVariable } from './efi-variable.ts';
import type { FirmwareBlob, HandoffTable, ImageLoad } from './firmware.ts';
import type { GptData } from './gpt.ts';
import type { IplContent } from './ipl.ts';
import type { NoActionContent } from './no-action.ts';
import type { DecodeError } from './reader.ts';

/** What decodeEvent needs: plain fields, so it works with any parser's event records. */
export interface DecodeInput {
  readonly pcr: number;
  readonly type: number;
  readonly data: Uint8Array;
  readonly digests: readonly { readonly bank: string; readonly digest: Uint8Array }[];
}

/** Digest of `bytes` in `bank` (sha1, sha256…), or undefined when that bank cannot be hashed. */
export type HashFunction = (bank: string, bytes: Uint8Array) => Uint8Array | undefined;

/** Result of comparing an event's digests with a hash of its data. */
export interface DigestCheck {
  /** False when the event type's digest does not cover bytes in the log, or no bank could be hashed. */
  readonly checked: boolean;
  /** Every hashed bank matched (directly or through `quirk`). False when unchecked. */
  readonly ok: boolean;
  /** Id of the firmware quirk (decode/quirks.ts) whose preimage matched after the spec preimage did not. */
  readonly quirk?: string;
  /** Banks whose digest matched no preimage. */
  readonly mismatchedBanks?: readonly string[];
}

export type DecodedBody =
  | { readonly kind: 'raw'; readonly error?: DecodeError }
  | { readonly kind: 'crtm-version'; readonly version?: string; readonly guid?: string }
  | { readonly kind: 'post-code'; readonly text?: string; readonly blob?: FirmwareBlob }
  | { readonly kind: 'firmware-blob'; readonly blob: FirmwareBlob }
  | { readonly kind: 'efi-variable'; readonly variable: EfiVariable }
  /** The image's Authenticode digest is the event's digest (PFP 10.2.5): `authenticode` lists it per bank. */
  | {
      readonly kind: 'image-load';
      readonly image: ImageLoad;
      readonly authenticode: readonly { readonly bank: string; readonly digest: Uint8Array }[];
    }
  | { readonly kind: 'gpt'; readonly gpt: GptData }
  | { readonly kind: 'text'; readonly text: string }
  /** `error` is true for 0xFFFFFFFF / 0x00000001 (PFP 10.4.4); `value` undefined when the data is not 4 bytes. */
  | { readonly kind: 'separator'; readonly value: number | undefined; readonly error: boolean }
  | { readonly kind: 'ipl'; readonly ipl: IplContent }
  | {
      readonly kind: 'handoff-tables';
      readonly description?: string;
      readonly tables: readonly HandoffTable[];
    }
  | { readonly kind: 'no-action'; readonly noAction: NoActionContent }
  /** TCG_PCClientTaggedEvent (EV_EVENT_TAG): SeaBIOS and Windows (SIPA) use it. */
  | { readonly kind: 'tagged'; readonly eventId: number; readonly eventData: Uint8Array }
  /** Vendor-defined events (EV_NONHOST_*, EV_TABLE_OF_DEVICES, EV_COMPACT_HASH…): a printable label when there is one. */
  | { readonly kind: 'opaque'; readonly label?: string };

/** One decoded event: type, PCR and raw bytes always kept, plus the body's meaning. */
export type DecodedEvent = DecodedBody & {
  readonly pcr: number;
  readonly type: number;
  readonly typeName: string;
  readonly data: Uint8Array;
  /** Present when decodeEvent was given a hash function. */
  readonly digestCheck?: DigestCheck;
};

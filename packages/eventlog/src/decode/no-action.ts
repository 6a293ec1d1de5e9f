// EV_NO_ACTION payloads (PC Client PFP 10.4.5): never extended, told apart by a 16-byte signature.
import { DecodeFault, Reader } from './reader.ts';
import { asciiz } from './text.ts';

export type NoActionContent =
  | {
      readonly form: 'spec-id';
      readonly signature: string;
      readonly platformClass: number;
      readonly specVersion: string;
      readonly uintnSize: number;
      readonly algorithms: readonly { readonly algId: number; readonly digestSize: number }[];
      readonly vendorInfoSize: number;
    }
  | { readonly form: 'startup-locality'; readonly signature: string; readonly locality: number }
  /** SP800-155 reference-manifest events and NV index events: named, not parsed. */
  | { readonly form: 'named'; readonly signature: string }
  | { readonly form: 'unknown'; readonly signature: string };

const NAMED = new Set([
  'SP800-155 Event',
  'SP800-155 Event2',
  'SP800-155 Event3',
  'NvIndexInstance',
  'NvIndexDynamic',
]);

export function noAction(data: Uint8Array): NoActionContent {
  const r = new Reader(data);
  if (data.length < 16) return { form: 'unknown', signature: asciiz(data) };
  const signature = asciiz(r.bytesN(16, 'Signature'));
  if (signature === 'StartupLocality')
    return { form: 'startup-locality', signature, locality: r.u8('StartupLocality') };
  if (signature === 'Spec ID Event03') {
    const platformClass = r.u32('platformClass');
    const minor = r.u8('specVersionMinor');
    const major = r.u8('specVersionMajor');
    const errata = r.u8('specErrata');
    const uintnSize = r.u8('uintnSize');
    const at = r.offset;
    const n = r.length32('numberOfAlgorithms', 4);
    if (n === 0) throw new DecodeFault('bad-value', 'Spec ID event declares no algorithms', at);
    const algorithms: { algId: number; digestSize: number }[] = [];
    for (let i = 0; i < n; i++)
      algorithms.push({ algId: r.u16('algorithmId'), digestSize: r.u16('digestSize') });
    const vendorInfoSize = r.u8('vendorInfoSize');
    return {
      form: 'spec-id',
      signature,
      platformClass,
      specVersion: `${major}.${minor}.${errata}`,
      uintnSize,
      algorithms,
      vendorInfoSize,
    };
  }
  if (signature === 'Spec ID Event00') {
    const platformClass = r.u32('platformClass');
    const minor = r.u8('specVersionMinor');
    const major = r.u8('specVersionMajor');
    const errata = r.u8('specErrata');
    const uintnSize = r.u8('uintnSize');
    return {
      form: 'spec-id',
      signature,
      platformClass,
      specVersion: `${major}.${minor}.${errata}`,
      uintnSize,
      algorithms: [],
      vendorInfoSize: 0,
    };
  }
  if (NAMED.has(signature)) return { form: 'named', signature };
  return { form: 'unknown', signature };
}

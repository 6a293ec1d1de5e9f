// The refusal codes as a run-time list, read from refusal.proto (the generated const is types-only here).
import type { RefusalCode__Output } from './gen/hostgate/v1/RefusalCode.ts';
import { hostgateRoot } from './load.ts';

export type RefusalCodeName = Exclude<RefusalCode__Output, 'REFUSAL_CODE_UNSPECIFIED'>;

let codes: readonly RefusalCodeName[] | undefined;

/** Every refusal code name in number order, without REFUSAL_CODE_UNSPECIFIED. */
export function refusalCodes(): readonly RefusalCodeName[] {
  if (codes === undefined) {
    const values = hostgateRoot().lookupEnum('hostgate.v1.RefusalCode').values;
    codes = Object.freeze(
      Object.entries(values)
        .filter(([, n]) => n !== 0)
        .sort((a, b) => a[1] - b[1])
        .map(([name]) => name as RefusalCodeName),
    );
  }
  return codes;
}

/** Whether `s` is a refusal code name (for input from JSON or the command line). */
export function isRefusalCode(s: string): s is RefusalCodeName {
  return (refusalCodes() as readonly string[]).includes(s);
}

// The JSON shape of replayed PCRs shared by the CLI and services: {"sha256": {"0": "hex"}}.
import { toHex } from './bytes.ts';
import type { Replay } from './replay.ts';

/** Replayed PCRs as lowercase hex, banks in log order, PCRs ascending. */
export function pcrsToJson(pcrs: Replay['pcrs']): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [bank, values] of Object.entries(pcrs)) {
    const b: Record<string, string> = {};
    for (const [pcr, v] of Object.entries(values)) b[pcr] = toHex(v);
    out[bank] = b;
  }
  return out;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replayEventLog } from '../src/index.ts';
import { buildAgileLog, GRUB_PATH, hash, quoteOf, SHIM_PATH, syntheticBoot } from './synthetic.ts';

const hex = (b: Uint8Array | string | undefined) => Buffer.from(b as Uint8Array).toString('hex');

test('a log that replays to the quote: every PCR matches, decoded Secure Boot, dbx and boot applications', () => {
  const boot = syntheticBoot();
  const log = buildAgileLog(['sha1', 'sha256'], boot.events);
  const out = replayEventLog({ eventLog: log, pcrBanks: quoteOf(['sha1', 'sha256'], boot.events) });
  assert.deepEqual(out.refusals, []);
  assert.equal(out.replay.match, true);
  assert.equal(out.replay.pcrs?.length, 16);
  assert.ok(out.replay.pcrs?.every((p) => p.match));
  assert.deepEqual(out.replay.eventsAtFault, []);
  // The Spec ID header (index 0) is EV_NO_ACTION: never verified; every measured event is.
  assert.equal(out.events.length, boot.events.length + 1);
  assert.equal(out.events[0]?.verified, false);
  assert.ok(out.events.slice(1).every((e) => e.verified));
  assert.deepEqual(out.secureBoot, { enabled: true, eventIndex: boot.index.secureBoot, verified: true });
  assert.deepEqual(out.dbx.map(hex), boot.dbx.map(hex));
  assert.equal(out.dbxEventIndex, boot.index.dbx);
  assert.deepEqual(
    out.bootApplications.map((a) => [hex(a.digest), a.path, a.eventIndex]),
    [
      [hex(boot.shimDigest), SHIM_PATH, boot.index.shim],
      [hex(boot.grubDigest), GRUB_PATH, boot.index.grub],
    ],
  );
  const sb = out.events[boot.index.secureBoot];
  assert.equal(sb?.eventTypeName, 'EV_EFI_VARIABLE_DRIVER_CONFIG');
  assert.equal(sb?.decoded?.kind, 'efi-variable');
  assert.equal(sb?.decoded?.variableName, 'SecureBoot');
  assert.equal(sb?.decoded?.secureBoot, true);
  assert.equal(out.events[boot.index.shim]?.decoded?.kind, 'boot-application');
  assert.equal(out.events[boot.index.shim]?.decoded?.imagePath, SHIM_PATH);
  assert.equal(out.events[boot.index.grub + 1]?.decoded?.description, 'Exit Boot Services Invocation');
});

test('Secure Boot off is decoded from the SecureBoot variable', () => {
  const boot = syntheticBoot({ secureBoot: false });
  const out = replayEventLog({
    eventLog: buildAgileLog(['sha256'], boot.events),
    pcrBanks: quoteOf(['sha256'], boot.events),
  });
  assert.deepEqual(out.refusals, []);
  assert.deepEqual(out.secureBoot, { enabled: false, eventIndex: boot.index.secureBoot, verified: true });
});

test('a quote that disagrees with PCR 4: EVENTLOG_MISMATCH naming the PCR, both values and the events', () => {
  const boot = syntheticBoot();
  const log = buildAgileLog(['sha256'], boot.events);
  const quote = quoteOf(['sha256'], boot.events);
  const pcr4 = quote[0]!.pcrs!.find((p) => p.index === 4)!;
  const forged = Buffer.from(pcr4.digest as Uint8Array);
  forged[0]! ^= 1;
  pcr4.digest = forged;
  const out = replayEventLog({ eventLog: log, pcrBanks: quote });
  assert.equal(out.replay.match, false);
  assert.equal(out.refusals.length, 1);
  const r = out.refusals[0]!;
  assert.equal(r.code, 'EVENTLOG_MISMATCH');
  // Events of PCR 4 in the log: the separator, shim, grub and the action (indices from the builder).
  const pcr4Events = boot.events.flatMap((e, i) => (e.pcr === 4 ? [i + 1] : []));
  assert.deepEqual(r.details, {
    pcr: '4',
    bank: 'sha256',
    expected: forged.toString('hex'),
    observed: hex(quoteOf(['sha256'], boot.events)[0]!.pcrs!.find((p) => p.index === 4)!.digest),
    event_indices: pcr4Events.join(','),
    event_index: String(pcr4Events.at(-1)),
  });
  assert.deepEqual(out.replay.eventsAtFault, pcr4Events);
  assert.deepEqual(
    out.replay.pcrs?.filter((p) => !p.match).map((p) => p.pcr),
    [4],
  );
  // Events of PCR 4 are no longer trusted: no boot application survives; PCR 7 facts still do.
  for (const i of pcr4Events) assert.equal(out.events[i]?.verified, false);
  assert.deepEqual(out.bootApplications, []);
  assert.equal(out.secureBoot.verified, true);
});

test('an event edited after the quote (shim swapped) is refused with the events at fault', () => {
  const boot = syntheticBoot();
  const quote = quoteOf(['sha256'], boot.events);
  const evil = syntheticBoot({ shimDigest: hash('sha256', new TextEncoder().encode('evil shim')) });
  const out = replayEventLog({ eventLog: buildAgileLog(['sha256'], evil.events), pcrBanks: quote });
  assert.deepEqual(
    out.refusals.map((r) => [r.code, r.details?.['pcr']]),
    [['EVENTLOG_MISMATCH', '4']],
  );
  assert.ok(out.replay.eventsAtFault?.includes(evil.index.shim));
});

test('a quoted bank the log lacks: EVENTLOG_BANK_MISSING', () => {
  const boot = syntheticBoot();
  const out = replayEventLog({
    eventLog: buildAgileLog(['sha256'], boot.events),
    pcrBanks: quoteOf(['sha256', 'sha384'], boot.events),
  });
  assert.deepEqual(
    out.refusals.map((r) => [r.code, r.details?.['bank']]),
    [['EVENTLOG_BANK_MISSING', 'sha384']],
  );
  assert.equal(out.replay.match, false);
});

test('an empty quote is refused, never a match', () => {
  const boot = syntheticBoot();
  const out = replayEventLog({ eventLog: buildAgileLog(['sha256'], boot.events), pcrBanks: [] });
  assert.deepEqual(
    out.refusals.map((r) => r.code),
    ['EVENTLOG_MISMATCH'],
  );
  assert.ok(out.events.every((e) => !e.verified));
});

test('malformed logs: EVENTLOG_MALFORMED with the byte offset, for every truncation', () => {
  const boot = syntheticBoot();
  const log = buildAgileLog(['sha256'], boot.events);
  const quote = quoteOf(['sha256'], boot.events);
  const empty = replayEventLog({ eventLog: new Uint8Array(0), pcrBanks: quote });
  assert.equal(empty.refusals[0]?.code, 'EVENTLOG_MALFORMED');
  let refused = 0;
  for (let n = 1; n < log.length; n += 7) {
    const out = replayEventLog({ eventLog: log.subarray(0, n), pcrBanks: quote });
    // A cut log either fails to parse or no longer replays: it never passes.
    assert.notDeepEqual(out.refusals, [], `cut at ${n}`);
    if (out.refusals[0]?.code === 'EVENTLOG_MALFORMED') {
      refused++;
      const offset = Number(out.refusals[0].details?.['offset']);
      assert.ok(offset >= 0 && offset <= n, `offset ${offset} within the ${n} bytes`);
    }
  }
  assert.ok(refused > 0);
  const text = replayEventLog({
    eventLog: new TextEncoder().encode('not an event log at all, just text'),
    pcrBanks: quote,
  });
  assert.equal(text.refusals[0]?.code, 'EVENTLOG_MALFORMED');
});

test('random bytes never throw', () => {
  const boot = syntheticBoot();
  const log = buildAgileLog(['sha256'], boot.events);
  const quote = quoteOf(['sha256'], boot.events);
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < 2000; i++) {
    const m = new Uint8Array(log);
    for (let k = 0; k < 4; k++) m[rnd() % m.length] = rnd() & 0xff;
    const out = replayEventLog({ eventLog: m, pcrBanks: quote });
    assert.equal(out.replay.match, out.refusals.length === 0);
  }
});

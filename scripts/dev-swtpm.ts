// A software TPM for trying HostGate by hand: swtpm with RSA and ECC EK certificates from a
// throw-away local CA, on free loopback ports. Prints the agent's --tpm address and the EK root to
// give quote-collector (HOSTGATE_EK_ROOTS: the local CA's root and the intermediate that signed the EK), then runs until Ctrl-C and removes what it made.
//   scripts/node scripts/dev-swtpm.ts
import { startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';

const missing = swtpmMissing();
if (missing !== undefined) {
  process.stderr.write(`dev-swtpm: ${missing}\n`);
  process.exit(1);
}
if (process.argv.length > 2) {
  process.stderr.write('usage: scripts/node scripts/dev-swtpm.ts\n');
  process.exit(2);
}
const tpm = await startSwtpm({ ekCert: true });
process.stdout.write(
  `swtpm ready\n  agent:       --tpm ${tpm.address}\n  tpm2-tools:  TPM2TOOLS_TCTI=${tpm.tcti}\n` +
    `  EK CA:       export HOSTGATE_EK_ROOTS=${tpm.ca?.rootCertPath ?? ''}:${tpm.ca?.issuerCertPath ?? ''}\n` +
    'Ctrl-C stops it.\n',
);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  tpm.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`dev-swtpm: stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);

// Placeholder until its issue's work lands; replaced by the module's owner.
import type { Command } from '../command.ts';

export const command: Command = async () => {
  process.stderr.write('hostgate quote: not built yet\n');
  return 1;
};

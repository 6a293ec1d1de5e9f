// The contract every `hostgate <verb>` module follows.

/** Exit status for success. */
export const EXIT_OK = 0;
/** Exit status for a refusal or invalid input: the reason is on stderr (or in --json output). */
export const EXIT_REFUSED = 1;
/** Exit status for wrong command-line usage. */
export const EXIT_USAGE = 2;

/** A verb: takes the arguments after the verb, writes its output, returns the exit status. */
export type Command = (argv: string[]) => Promise<number>;

/**
 * Thrown for bad flags or arguments: main prints the message (one line, no usage text) and a
 * one-line hint to stderr, and exits 2. stdout stays empty.
 */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

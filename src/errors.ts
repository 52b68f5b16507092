// Errors a user can act on: printed as one line, never with a stack trace.

/** Wrong command line or unusable input; uwrx exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The environment cannot run uwrx (kernel feature missing, helper not built ...); exit 2. */
export class EnvironmentError extends Error {
  override name = 'EnvironmentError';
}

export function isUserError(err: unknown): err is UsageError | EnvironmentError {
  return err instanceof UsageError || err instanceof EnvironmentError;
}

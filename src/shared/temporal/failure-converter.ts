import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces travel as a payload (so the codec encrypts them like any other):
 * an error can quote what it failed on, a payer's email or a message's bytes. Loaded by path, inside
 * the workflow sandbox and by clients alike (failureConverterPath).
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });

/** Raised when no way to obtain a required server binary worked; the message says what to do. */
export class ProvisioningError extends Error {
  constructor(
    readonly tool: string,
    readonly attempts: string[],
    readonly advice: string,
  ) {
    super(`Cannot provide ${tool}.\nTried:\n${attempts.map((a) => `  - ${a}`).join('\n')}\nTo fix: ${advice}`);
    this.name = 'ProvisioningError';
  }
}

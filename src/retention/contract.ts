/** How the retention Schedule meets its workflow: the type name (recorded in the Schedule: never rename it). */
export const RAW_BODY_RETENTION = 'rawBodyRetention';

/** Where a pass continues (after continue-as-new) and what it dropped so far. */
export interface RawBodyRetentionInput {
  after?: string | null;
  dropped?: number;
}

export interface RawBodyRetentionResult {
  dropped: number;
  stamped: number;
  scanned: number;
}

export type RawBodyRetentionWorkflow = (input?: RawBodyRetentionInput) => Promise<RawBodyRetentionResult>;

import { proxyActivities } from '@temporalio/workflow';
import type { FloorActivities } from './activities';

const { postback, store } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });

/** The least a verified IPN can cost: one PayPal postback, one database write. */
export async function floorIpn(raw: string): Promise<string> {
  const answer = await postback(raw);
  await store(raw, answer);
  return answer;
}

import type mongoose from 'mongoose';

type Db = mongoose.mongo.Db;

const PREFIX = 'cmd=_notify-validate&';

export function createFloorActivities(db: Db, verifyUrl: string) {
  const collection = db.collection('bench_floor');
  return {
    async postback(raw: string): Promise<string> {
      const res = await fetch(verifyUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: PREFIX + raw,
        signal: AbortSignal.timeout(30_000),
      });
      const answer = (await res.text()).trim();
      if (res.status !== 200)
        throw new Error(`postback to ${verifyUrl} answered ${res.status}: ${answer.slice(0, 80)}`);
      return answer;
    },
    async store(raw: string, answer: string): Promise<void> {
      await collection.insertOne({ raw, answer, at: new Date() });
    },
  };
}

export type FloorActivities = ReturnType<typeof createFloorActivities>;

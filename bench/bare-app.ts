import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import getRawBody from 'raw-body';
import mongoose from 'mongoose';

/**
 * The anchor for the IPN ack path: the least any listener must do before answering 200,
 * one insert of the raw body into the same database server, with the same libraries.
 */
export async function startBareApp(mongoUri: string, dbName: string): Promise<{ url: string; stop(): Promise<void> }> {
  const mongo = await new mongoose.mongo.MongoClient(mongoUri).connect();
  const collection = mongo.db(dbName).collection('bench_bare');
  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.method !== 'POST') return;
    const raw = await getRawBody(ctx.req, { limit: 64 * 1024, length: ctx.get('content-length') || undefined });
    await collection.insertOne({ raw, receivedAt: new Date() });
    ctx.status = 200;
    ctx.body = '';
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ipn`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await mongo.close();
    },
  };
}

import crypto from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';

/** The metadata of an encrypted payload (as temporalio/samples-typescript `encryption` spells it). */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

export interface CodecKeys {
  /** Every key that may have encrypted a payload, by id (old ones stay for reading). */
  keys: ReadonlyMap<string, Buffer>;
  /** The key new payloads are encrypted with. */
  current: string;
}

/** `id1:<64 hex>,id2:<64 hex>` (TEMPORAL_CODEC_KEYS) and the current id (default: the first), or null. */
export function parseCodecKeys(text: string | undefined, current?: string): CodecKeys | null {
  if (!text) return null;
  const keys = new Map<string, Buffer>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]{1,40}):([0-9a-fA-F]{64})$/.exec(part);
    if (!m) throw new Error('TEMPORAL_CODEC_KEYS: each entry is <id>:<64 hex characters>');
    keys.set(m[1]!, Buffer.from(m[2]!, 'hex'));
  }
  const id = current || [...keys.keys()][0];
  if (!id || !keys.has(id)) throw new Error(`TEMPORAL_CODEC_KEY_ID: no key ${id ?? '(none)'} in TEMPORAL_CODEC_KEYS`);
  return { keys, current: id };
}

const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');

/** A payload as bytes: its metadata and data, JSON with base64 values (what the codec encrypts whole). */
function serialize(p: Payload): Buffer {
  const metadata = Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)]));
  return Buffer.from(JSON.stringify({ metadata, data: b64(p.data) }), 'utf8');
}

function deserialize(bytes: Buffer): Payload {
  const { metadata, data } = JSON.parse(bytes.toString('utf8')) as { metadata: Record<string, string>; data: string };
  return {
    metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(data, 'base64'),
  };
}

/**
 * AES-256-GCM over each whole payload (metadata and data), the key id in the clear metadata so a
 * rotated key still reads what it wrote: rotation adds a key and switches the current id. Payloads
 * without the encrypted encoding (histories written before the codec) pass through decode as they are.
 */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.keys.get(this.keys.current)!;
    return payloads.map((p) => {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      const data = Buffer.concat([iv, cipher.update(serialize(p)), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(this.keys.current),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const encoding = Buffer.from(p.metadata?.[METADATA_ENCODING_KEY] ?? []).toString();
      if (encoding !== ENCRYPTED_ENCODING) return p;
      const keyId = Buffer.from(p.metadata?.[KEY_ID_METADATA] ?? []).toString();
      const key = this.keys.keys.get(keyId);
      if (!key) throw new Error(`payload encrypted with key ${JSON.stringify(keyId)}, not in TEMPORAL_CODEC_KEYS`);
      const bytes = Buffer.from(p.data ?? []);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      return deserialize(Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]));
    });
  }
}

/** The data converter for clients and workers: the codec when keys are configured, else Temporal's default. */
export function dataConverterFor(config: { TEMPORAL_CODEC_KEYS?: string; TEMPORAL_CODEC_KEY_ID?: string }) {
  const keys = parseCodecKeys(config.TEMPORAL_CODEC_KEYS, config.TEMPORAL_CODEC_KEY_ID);
  return keys
    ? { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: require.resolve('./failure-converter') }
    : undefined;
}

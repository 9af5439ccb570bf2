import { connect, type IncomingHttpHeaders } from 'node:http2';

/** `msg` with its 5-byte gRPC prefix (flag, big-endian length). */
export function grpcFrame(msg: Buffer, flag = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

/**
 * Starts a ModelInfer call on a raw HTTP/2 connection, writes `bytes` and never ends the upload:
 * the response headers the server sends while it is still open (a check made before the message
 * was read), or a failure after 5 s without an answer.
 */
export async function answerWhileUploading(addr: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
  const session = connect(`http://${addr}`);
  try {
    return await new Promise<IncomingHttpHeaders>((ok, fail) => {
      const call = session.request({
        ':method': 'POST',
        ':path': '/inference.GRPCInferenceService/ModelInfer',
        'content-type': 'application/grpc',
        te: 'trailers',
        ...headers,
      });
      call.on('response', ok);
      call.on('error', fail);
      setTimeout(() => fail(new Error('no answer within 5 s while the upload was open')), 5000).unref();
      call.write(bytes);
    });
  } finally {
    session.close();
  }
}

import { grpcClosedLoop } from './online-grpc-autoscale.bench-part';
import { grpcRawClosedLoop } from './support/grpc-load';
import { closedLoop, type Target } from './support/http-load';
import { cpuSeconds as cpuS } from './support/proc-stat';
import { median } from './support/stats';

/** Parts of `npm run bench:online` (BENCH_ONLY=grpc, grpc-overload): gRPC against REST binary on ppocr_cls. */

export interface GrpcPhase {
  addr: string;
  protoDir: string;
  /** The framed ModelInfer request (clsInferMessage). */
  message: Buffer;
  key: string;
  gatewayPid: number;
  /** REST binary, the same model and image. */
  cls: Target;
  rounds: number;
  seconds: number;
  say: (s: string) => void;
}

/**
 * Interleaved rounds at c = 32: REST binary (raw-socket client), gRPC with a raw HTTP/2 client and
 * gRPC with grpc-js's client, each with the gateway's and the client's CPU per call.
 */
export async function grpcAgainstRest(o: GrpcPhase): Promise<void> {
  await grpcClosedLoop(o.addr, o.protoDir, 32, 1, 1, o.key);
  await grpcRawClosedLoop(o.addr, o.message, 32, 1, o.key);
  const [raw, js]: number[][] = [[], []];
  for (let i = 1; i <= o.rounds; i++) {
    // Each phase's CPU per answered call, the gateway's and the load generator's (this process):
    // on two cores what the client takes is taken from the server, so both are printed.
    const gen =
      <T extends { errors: number }>(f: () => Promise<T>, n: (r: T) => number) =>
      async (): Promise<[T, string]> => {
        const [g0, c0] = [cpuS(o.gatewayPid), cpuS(process.pid)];
        const r = await f();
        const calls = Math.max(1, n(r) * o.seconds);
        const us = (pid: number, s0: number): string => ((1e6 * (cpuS(pid) - s0)) / calls).toFixed(0);
        return [r, `gateway ${us(o.gatewayPid, g0)} µs/call, client ${us(process.pid, c0)}`];
      };
    const [grpcRaw, rawUs] = await gen(
      () => grpcRawClosedLoop(o.addr, o.message, 32, o.seconds, o.key),
      (r) => r.rps,
    )();
    const [rest, restUs] = await gen(
      () => closedLoop(o.cls, 32, o.seconds),
      (r) => r.rps,
    )();
    const [grpcJs, jsUs] = await gen(
      () => grpcClosedLoop(o.addr, o.protoDir, 32, o.seconds, 1, o.key),
      (r) => r.itemsS,
    )();
    raw.push(grpcRaw.rps / rest.rps);
    js.push(grpcJs.itemsS / rest.rps);
    o.say(
      `round ${i}: REST binary ${rest.rps.toFixed(0)} items/s (${rest.errors} errors; ${restUs}) | ` +
        `gRPC raw contents, raw HTTP/2 client ${grpcRaw.rps.toFixed(0)} items/s p99 ${grpcRaw.p99.toFixed(1)} ms (${grpcRaw.errors} errors; ${rawUs}) ratio ${(grpcRaw.rps / rest.rps).toFixed(3)} | ` +
        `grpc-js client ${grpcJs.itemsS.toFixed(0)} items/s p99 ${grpcJs.p99.toFixed(1)} ms (${grpcJs.errors} errors; ${jsUs}) ratio ${(grpcJs.itemsS / rest.rps).toFixed(3)}`,
    );
  }
  o.say(`median gRPC / REST binary: raw HTTP/2 client ${median(raw).toFixed(3)}, grpc-js client ${median(js).toFixed(3)}`);
}

/**
 * The overload phase over gRPC (raw HTTP/2 client, 8 connections): 32 calls in flight, then 600
 * that retry at once after UNAVAILABLE. ModelInfer is admitted on the message's first bytes, and
 * a refused call is reset before the rest of its upload is read.
 */
export async function grpcOverload(o: GrpcPhase): Promise<void> {
  await grpcRawClosedLoop(o.addr, o.message, 32, 2, o.key);
  const ratios: number[] = [];
  for (let i = 1; i <= o.rounds; i++) {
    const line: string[] = [];
    const rps: number[] = [];
    for (const c of [32, 600]) {
      const g0 = cpuS(o.gatewayPid);
      const r = await grpcRawClosedLoop(o.addr, o.message, c, o.seconds, o.key);
      rps.push(r.rps);
      line.push(
        `c=${c} goodput ${r.rps.toFixed(0)}/s admitted p50 ${r.p50.toFixed(0)} p99 ${r.p99.toFixed(0)} ms (${r.errors} refused or failed, ${(r.errors / r.seconds).toFixed(0)}/s; gateway cpu/s ${((cpuS(o.gatewayPid) - g0) / r.seconds).toFixed(2)})`,
      );
    }
    ratios.push(rps[1]! / rps[0]!);
    o.say(`gRPC overload round ${i}: ${line.join(' | ')} | ratio ${(rps[1]! / rps[0]!).toFixed(3)}`);
  }
  o.say(`median gRPC overload goodput ratio c=600 / c=32 ${median(ratios).toFixed(3)}`);
}

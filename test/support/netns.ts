import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A process running inside a network namespace, with its output kept for diagnostics. */
export interface NsProcess {
  proc: ChildProcess;
  output(): string;
  waitFor(re: RegExp, timeoutMs: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** One simulated machine: its namespace, its address on the shared bridge, its link's two ends. */
export interface NsHost {
  ns: string;
  addr: string;
  /** The link's end on the bridge side (in the stores namespace): down = the host is cut off. */
  bridgePort: string;
}

/**
 * A private network of namespaces on this machine: `stores` (the bridge, .1) and any number of
 * hosts (.11, .12, …), each on its own veth pair to the bridge, plus a veth from the root
 * namespace (.254) so the test process reaches everything. Names and the /24 are random, so a
 * stale or parallel run never collides; `destroy` kills what runs inside and deletes it all.
 */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex');
  readonly subnet: string;
  readonly stores: NsHost;
  readonly hosts: NsHost[] = [];
  private readonly namespaces: string[] = [];
  private readonly procs: NsProcess[] = [];

  constructor() {
    const used = ip('-4', 'route', 'show', 'table', 'all');
    let third = 0;
    do third = 100 + Math.floor(Math.random() * 150);
    while (used.includes(`10.77.${third}.`));
    this.subnet = `10.77.${third}`;
    this.stores = { ns: `tmn-${this.id}-s`, addr: `${this.subnet}.1`, bridgePort: '' };
  }

  /** Root's own address on the lab network (the test process talks from here). */
  get rootAddr(): string {
    return `${this.subnet}.254`;
  }

  create(hostCount: number): void {
    const s = this.stores.ns;
    this.addNs(s);
    ip('-n', s, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', s, 'addr', 'add', `${this.stores.addr}/24`, 'dev', 'br0');
    ip('-n', s, 'link', 'set', 'br0', 'up');
    for (let k = 1; k <= hostCount; k++) {
      const ns = `tmn-${this.id}-${k}`;
      this.addNs(ns);
      const [inner, outer] = [`tmn${this.id}h${k}`, `tmn${this.id}b${k}`];
      ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer);
      ip('link', 'set', inner, 'netns', ns, 'name', 'eth0');
      ip('link', 'set', outer, 'netns', s);
      ip('-n', s, 'link', 'set', outer, 'master', 'br0', 'up');
      const addr = `${this.subnet}.${10 + k}`;
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      this.hosts.push({ ns, addr, bridgePort: outer });
    }
    const [root, rootPeer] = [`tmn${this.id}r`, `tmn${this.id}rb`];
    ip('link', 'add', root, 'type', 'veth', 'peer', 'name', rootPeer);
    ip('link', 'set', rootPeer, 'netns', s);
    ip('-n', s, 'link', 'set', rootPeer, 'master', 'br0', 'up');
    ip('addr', 'add', `${this.rootAddr}/24`, 'dev', root);
    ip('link', 'set', root, 'up');
  }

  private addNs(ns: string): void {
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** Cuts a host off the network: its link to the bridge goes down. */
  cut(host: NsHost): void {
    ip('-n', this.stores.ns, 'link', 'set', host.bridgePort, 'down');
  }

  /** Runs `cmd args` inside `ns` (`ip netns exec` execs it: the child's pid is the command's). */
  run(ns: string, cmd: string, args: string[], env: Record<string, string>): NsProcess {
    const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer): void => {
      out += b.toString();
      if (out.length > 400_000) out = out.slice(-200_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const alive = (): boolean => proc.exitCode === null && proc.signalCode === null;
    const p: NsProcess = {
      proc,
      output: () => out,
      async waitFor(re, timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        while (!re.test(out)) {
          if (!alive()) throw new Error(`${cmd} in ${ns} exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${out.slice(-3000)}`);
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} from ${cmd} in ${ns}:\n${out.slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async kill(signal) {
        if (!alive()) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill(signal);
        await exited;
      },
    };
    this.procs.push(p);
    return p;
  }

  /** Kills every process started here, then deletes the namespaces (their veths go with them). */
  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGKILL').catch(() => undefined)));
    // Anything else left inside (e.g. a postgres backend) goes too, or the namespace lingers.
    for (const ns of this.namespaces) {
      try {
        const pids = ip('netns', 'pids', ns).split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace already gone */
      }
    }
    for (const ns of this.namespaces.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
    try {
      ip('link', 'del', `tmn${this.id}r`);
    } catch {
      /* went with the stores namespace */
    }
  }
}

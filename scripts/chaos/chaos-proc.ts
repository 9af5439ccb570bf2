import { spawn, type ChildProcess } from 'node:child_process';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A child app process: recent output for diagnostics, and every complete line to the listeners. */
export class Proc {
  readonly logs: string[] = [];
  readonly child: ChildProcess;
  private partial = '';
  private readonly lineListeners: ((line: string) => void)[] = [];

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      const s = b.toString();
      this.logs.push(s);
      if (this.logs.length > 200) this.logs.shift();
      const lines = (this.partial + s).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) for (const l of this.lineListeners) l(line);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  onLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(re: RegExp, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.logs.join(''))) {
      if (!this.alive) throw new Error(`process exited early:\n${this.logs.join('').slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${this.logs.join('').slice(-2000)}`);
      await sleep(50);
    }
  }

  async kill(sig: NodeJS.Signals): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    const done = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill(sig);
    return done;
  }
}

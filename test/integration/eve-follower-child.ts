/**
 * A process that follows an eve file and "delivers" each line by appending `<offset>\t<text>`
 * to an output file, then acknowledges it. Used by the kill -9 test.
 * Usage: eve-follower-child <eve path> <state dir> <output file>
 */
import { appendFileSync } from 'node:fs';
import { CheckpointStore } from '../../src/eve/checkpoint-store.js';
import { EveFollower, type EveLine } from '../../src/eve/eve-follower.js';
import { silentLogger } from '../../src/logger.js';

const [evePath, stateDir, outPath] = process.argv.slice(2);
if (!evePath || !stateDir || !outPath) {
  process.stderr.write('usage: eve-follower-child <eve path> <state dir> <output file>\n');
  process.exit(2);
}

const log = silentLogger();
const queue: EveLine[] = [];
let draining = false;

// Deliver a few lines at a time with a short pause, like a shipper waiting on a collector.
function drain(): void {
  if (draining) return;
  draining = true;
  const step = (): void => {
    const batch = queue.splice(0, 5);
    if (batch.length === 0) {
      draining = false;
      return;
    }
    appendFileSync(outPath!, batch.map((l) => `${l.offset}\t${l.text}\n`).join(''));
    for (const l of batch) follower.ack(l.seq);
    setTimeout(step, 1);
  };
  step();
}

const follower = new EveFollower(
  { path: evePath, startAt: { kind: 'beginning' }, maxLineBytes: 65_536, pollIntervalMs: 20, maxPendingLines: 50 },
  new CheckpointStore(stateDir, log),
  log,
  (lines) => {
    queue.push(...lines);
    drain();
  },
);

process.on('SIGTERM', () => {
  void follower.stop().then(() => process.exit(0));
});
await follower.start();
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30); // stay alive

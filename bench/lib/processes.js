// Child processes and cleanup: everything the harness starts is tracked here and
// is stopped on normal exit, on error and on SIGINT/SIGTERM.
import { setTimeout as sleep } from 'node:timers/promises';

/** @typedef {import('node:child_process').ChildProcess} ChildProcess */

/** @type {Set<ChildProcess>} */
const children = new Set();
/** @type {Array<{ label: string, fn: () => Promise<void> | void }>} */
const cleanups = [];

/** @param {ChildProcess} child */
export function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Tracks a child so it is killed however the harness ends.
 * @template {ChildProcess} T
 * @param {T} child
 * @returns {T}
 */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * SIGTERM, then SIGKILL if it has not exited after `graceMs`.
 * @param {ChildProcess} child
 * @param {number} [graceMs]
 */
export async function stopChild(child, graceMs = 5_000) {
  if (!isRunning(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([exited, timer])) === 'timeout' && isRunning(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Registers an async cleanup step; steps run last-in first-out.
 * Returns a function that runs the step now and unregisters it.
 * @param {string} label
 * @param {() => Promise<void> | void} fn
 */
export function onCleanup(label, fn) {
  const entry = { label, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i === -1) return;
    cleanups.splice(i, 1);
    await fn();
  };
}

/** Runs every pending cleanup step (errors are reported, not thrown), then kills stragglers. */
export async function cleanupAll() {
  while (cleanups.length > 0) {
    const { label, fn } = /** @type {(typeof cleanups)[number]} */ (cleanups.pop());
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup "${label}" failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  await Promise.all([...children].map((child) => stopChild(child, 2_000)));
}

/** SIGINT/SIGTERM clean up and exit; a plain exit still kills any child left. */
export function installExitHandlers() {
  let stopping = false;
  for (const [signal, code] of /** @type {const} */ ([['SIGINT', 130], ['SIGTERM', 143]])) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.error(`\n${signal}: stopping child processes and cleaning up…`);
      cleanupAll().finally(() => process.exit(code));
    });
  }
  process.on('exit', () => {
    for (const child of children) if (isRunning(child)) child.kill('SIGKILL');
  });
}

// The harness side of bench/loadgen.js: forks it once and sends it commands.
import { fork } from 'node:child_process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { onCleanup, stopChild, track } from './processes.js';

/**
 * @typedef {object} RunResult
 * @property {number} responses
 * @property {number} sent       requests written (all answered when `drained`)
 * @property {number} ok2xx
 * @property {number} non2xx
 * @property {Record<string, number>} statusCodes
 * @property {number} errors
 * @property {number} timeouts
 * @property {number} elapsedSeconds first request to last response
 * @property {number} requestsPerSecond responses / elapsedSeconds
 * @property {{ mean: number, p50: number, p90: number, p99: number, max: number }} latencyMs
 * @property {boolean} drained every request sent got its response (false: cut off 15 s after the end)
 */

export async function startLoadgen() {
  const child = track(
    fork(fileURLToPath(new URL('../loadgen.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const stop = onCleanup(`load generator pid ${child.pid}`, () => stopChild(child, 3_000));
  let nextId = 0;

  /**
   * @param {Record<string, unknown>} message
   * @param {number} timeoutMs
   */
  const call = (message, timeoutMs) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      const onMessage = (/** @type {any} */ reply) => {
        if (reply.id !== id) return;
        done();
        if (reply.ok) resolve(reply.result);
        else reject(new Error(`load generator: ${reply.error}`));
      };
      const onExit = (/** @type {number | null} */ code) => {
        done();
        reject(new Error(`load generator exited (code ${code})`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`load generator did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ ...message, id });
    });

  return {
    /** @param {string[]} tokens device tokens to rotate over */
    setTokens: (tokens) => call({ type: 'tokens', tokens }, 60_000),
    /**
     * One load run: `duration` seconds, then the requests in flight are answered.
     * @param {{ url: string, connections: number, duration: number }} spec
     * @returns {Promise<RunResult>}
     */
    run: (spec) => /** @type {Promise<RunResult>} */ (call({ type: 'run', ...spec }, (spec.duration + 45) * 1000)),
    stop,
  };
}

/**
 * Preloaded into a controller process (`node --import`) by the shutdown test: on SIGUSR2 a promise
 * rejects that nothing awaits, as a forgotten `await` in a reconciler would leave one.
 */
process.on('SIGUSR2', () => {
  void Promise.reject(new Error('a rejection nothing handles'));
});

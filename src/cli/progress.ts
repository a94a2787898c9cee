/**
 * Feedback for the CLI while it waits on the network. A wait shorter than a
 * second shows nothing, since a flicker is noise. A longer one shows a spinner on a TTY,
 * and a single plain line otherwise, so that CI logs and pipes get no control characters.
 * Also the ✓/✗ marks, which become ASCII `ok`/`FAIL` off a TTY for grep and old terminals.
 */

/** The part of a stream this needs, so that tests can pass a recorder. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Marks {
  ok: string;
  fail: string;
  skip: string;
}

export const TTY_MARKS: Marks = { ok: '✓', fail: '✗', skip: '-' };
export const PLAIN_MARKS: Marks = { ok: 'ok', fail: 'FAIL', skip: 'skip' };

export const marks = (tty: boolean | undefined): Marks => (tty ? TTY_MARKS : PLAIN_MARKS);

export const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'] as const;

export interface ProgressOptions {
  /** Where the feedback goes; stderr by default, so stdout stays clean for output. */
  stream?: ProgressStream;
  /** How long a wait may take before anything is shown. Default 1 s. */
  delayMs?: number;
  /** Spinner frame interval on a TTY. Default 80 ms. */
  intervalMs?: number;
}

/**
 * Runs `work` and shows `label` while it takes longer than `delayMs`. The
 * spinner line is erased afterwards, so the caller's own result line takes its
 * place. The result and any error of `work` pass through unchanged.
 */
export async function withProgress<T>(label: string, work: () => Promise<T>, options: ProgressOptions = {}): Promise<T> {
  const stream = options.stream ?? process.stderr;
  const delayMs = options.delayMs ?? 1_000;
  const intervalMs = options.intervalMs ?? 80;
  let frame = 0;
  let spinning = false;
  let spinner: NodeJS.Timeout | undefined;
  const show = () => {
    if (!stream.isTTY) {
      stream.write(`${label}…\n`);
      return;
    }
    spinning = true;
    const draw = () => {
      stream.write(`\r${SPINNER_FRAMES[frame++ % SPINNER_FRAMES.length]} ${label}`);
    };
    draw();
    spinner = setInterval(draw, intervalMs);
    spinner.unref();
  };
  const delay = setTimeout(show, delayMs);
  delay.unref();
  try {
    return await work();
  } finally {
    clearTimeout(delay);
    if (spinner) clearInterval(spinner);
    // Carriage return and erase-line: the caller's next line lands where the spinner was.
    if (spinning) stream.write('\r\x1b[2K');
  }
}

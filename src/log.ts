/**
 * Structured JSON logging (pino). Every line carries the object key it is
 * about, so `kubectl logs | jq 'select(.key=="ns/name")'` tells one story.
 * Secret data and keys are never passed to the logger; `redact` is the
 * safety net for anyone who tries.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { app: 'certroute' },
    redact: { paths: ['*.data', '*.stringData', '*.privateKey', '*.accountKey', '*["tls.key"]'], censor: '[redacted]' },
  });
}

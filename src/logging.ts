import { pino, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty' | 'auto';

/** JSON logs for machines; pretty ones when a person watches a terminal. */
export const createLogger = (options: { level?: string; format?: LogFormat; name?: string } = {}): Logger => {
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  return pino({
    name: options.name ?? 'resource-broker',
    level: options.level ?? 'info',
    // Tokens and Secret payloads must never reach the logs.
    redact: { paths: ['*.authorization', '*.token', '*.data', '*.stringData', 'headers.authorization'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
};

/** A logger that drops everything: for tests and library defaults. */
export const silentLogger = (): Logger => pino({ level: 'silent' });

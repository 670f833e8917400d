import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty' | 'auto';

/** klog's severity letters (and T, D for levels klog has no letter for). */
const LETTERS: Record<string, string> = { trace: 'T', debug: 'D', info: 'I', warn: 'W', error: 'E', fatal: 'F' };
const COLORS: Record<string, string> = { W: '\u001b[33m', E: '\u001b[31m', F: '\u001b[31m' };
const RESERVED = new Set(['level', 'time', 'logger', 'msg']);

const two = (n: number): string => String(n).padStart(2, '0');

/** A value as klog writes it in `key=value`: strings and objects quoted as JSON, numbers and booleans bare. */
const klogValue = (value: unknown): string => {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'object' && value !== null && 'message' in value && 'type' in value) {
    return JSON.stringify(String((value as { message: unknown }).message));
  }
  return JSON.stringify(value);
};

/**
 * One JSON log line as klog writes text: `I1126 11:05:21.123456 logger] "msg" key="value"`,
 * local time as klog has it, the severity letter coloured on a terminal.
 */
export const klogLine = (record: Record<string, unknown>, color = false): string => {
  const letter = LETTERS[String(record['level'])] ?? 'I';
  const at = new Date(typeof record['time'] === 'string' ? record['time'] : Date.now());
  const stamp = `${two(at.getMonth() + 1)}${two(at.getDate())} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${String(at.getMilliseconds()).padStart(3, '0')}000`;
  const head = color && COLORS[letter] ? `${COLORS[letter]}${letter}\u001b[0m` : letter;
  const fields = Object.entries(record)
    .filter(([key]) => !RESERVED.has(key))
    .map(([key, value]) => ` ${key}=${klogValue(value)}`)
    .join('');
  return `${head}${stamp} ${String(record['logger'] ?? '')}] ${JSON.stringify(String(record['msg'] ?? ''))}${fields}\n`;
};

/** Writes pino's JSON lines to stdout as klog text, in the process (no worker thread). */
const klogDestination = (color: boolean): DestinationStream => ({
  write: (line: string): void => {
    try {
      process.stdout.write(klogLine(JSON.parse(line) as Record<string, unknown>, color));
    } catch {
      process.stdout.write(line);
    }
  },
});

/**
 * Logs as the Kubernetes world reads them: JSON lines with a string `level`, RFC 3339 `time`,
 * one `logger` field and `msg` (what zap writes for controller-runtime); or klog-style text when a
 * person watches a terminal.
 */
export const createLogger = (
  options: {
    level?: string;
    format?: LogFormat;
    name?: string /** JSON lines go here instead of stdout. */;
    destination?: DestinationStream;
  } = {},
): Logger => {
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const settings = {
    level: options.level ?? 'info',
    base: { logger: options.name ?? 'resource-broker' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    // Tokens and Secret payloads must never reach the logs.
    redact: {
      paths: [
        'authorization',
        'token',
        'data',
        'stringData',
        '*.authorization',
        '*.token',
        '*.data',
        '*.stringData',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  if (pretty) return pino(settings, klogDestination(process.stdout.isTTY === true));
  return options.destination ? pino(settings, options.destination) : pino(settings);
};

/** A logger that drops everything: for tests and library defaults. */
export const silentLogger = (): Logger => pino({ level: 'silent' });

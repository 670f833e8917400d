import { describe, expect, it, vi } from 'vitest';
import { createLogger, klogLine } from './logging.ts';

const captured = (format: 'json' | 'pretty', log: (logger: ReturnType<typeof createLogger>) => void): string[] => {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    log(createLogger({ format }));
  } finally {
    spy.mockRestore();
  }
  return lines.join('').split('\n').filter(Boolean);
};

describe('logs', () => {
  it('writes JSON with a string level, an RFC 3339 time, one logger field, and no payloads', () => {
    const out: string[] = [];
    const logger = createLogger({ format: 'json', destination: { write: (line: string) => void out.push(line) } });
    logger.info({ name: 'app', data: { key: 'c2VjcmV0' } }, 'object placed');
    expect(out[0]).not.toContain('c2VjcmV0');
    const record = JSON.parse(out[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 'info', logger: 'resource-broker', name: 'app', data: '[redacted]', msg: 'object placed' });
    expect(out[0]!.match(/"name":/g)).toHaveLength(1);
    expect(String(record['time'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('reads like klog in pretty mode, and redacts Secret data and tokens there too', () => {
    const lines = captured('pretty', (logger) => {
      logger.info({ name: 'app', consumer: 'ws|default|app' }, 'object placed');
      logger.child({ controller: 'sync' }).warn({ err: new Error('boom'), failures: 2, data: { password: 'hunter2' } }, 'reconcile failed');
      logger.error({ token: 'secret-token' }, 'refused');
    });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^I\d{4} \d\d:\d\d:\d\d\.\d{6} resource-broker\] "object placed" name="app" consumer="ws\|default\|app"$/);
    expect(lines[1]).toMatch(
      /^W\d{4} .* resource-broker\] "reconcile failed" controller="sync" err="boom" failures=2 data="\[redacted\]"$/,
    );
    expect(lines[2]).toMatch(/^E\d{4} .*\] "refused" token="\[redacted\]"$/);
    expect(lines.join('\n')).not.toContain('hunter2');
  });

  it('formats any record, even one without a time or logger', () => {
    expect(klogLine({ level: 'debug', msg: 'x', n: 1, ok: true, list: ['a'] })).toMatch(
      /^D\d{4} [\d:.]+ \] "x" n=1 ok=true list=\["a"\]\n$/,
    );
  });
});

import { randomBytes } from 'node:crypto';

/** `prefix-<6 hex>`: workspaces of different tests never collide in the shared kcp. */
export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(3).toString('hex')}`;

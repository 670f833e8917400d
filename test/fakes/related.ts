import { contentHashOf } from '../../src/controllers/related/digest.ts';
import type { RelatedKind, RelatedSource } from '../../src/controllers/related/mirror.ts';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';

/** A related source over an object in hand (what the sync controller builds from its digest cache and a GET). */
export const relatedSource = (kind: RelatedKind, object: KubeObject): RelatedSource => ({
  kind,
  namespace: object.metadata.namespace ?? '',
  name: object.metadata.name ?? '',
  contentHash: contentHashOf(object),
  read: async () => object,
});

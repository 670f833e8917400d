import { clusterOf, type KubeObject } from '../../kcp-client-ts/types.ts';
import { relatedRefs } from '../related/refs.ts';
import type { RelatedKind } from '../related/mirror.ts';

/** A Secret or ConfigMap as a staging copy names it: `cluster/Kind/namespace/name`. */
export const relatedReferenceOf = (cluster: string, kind: RelatedKind, namespace: string, name: string): string =>
  [cluster, kind, namespace, name].join('/'); // one flat string, kept as an index and count key (see encodeKey)

/** The related resources a staging copy names, in its own workspace. */
export const referencesOfCopy = (copy: KubeObject): string[] =>
  relatedRefs(copy, copy.metadata.namespace || 'default').refs.map((r) => relatedReferenceOf(clusterOf(copy), r.kind, r.namespace, r.name));

/**
 * The Secrets and ConfigMaps some staging copy of one staging view names in
 * `status.relatedResources` (copies of every brokered resource served through the view count),
 * with how many copies name each. The view's Secret and ConfigMap caches keep only these: a
 * provider decides how many Secrets its staging workspaces hold, and the broker's memory follows
 * what the copies reference (at most MAX_RELATED each), not that.
 */
export class RelatedReferences {
  readonly #counts = new Map<string, number>();
  /** Copies caches of the view that have not listed yet. */
  readonly #warming = new Set<object>();

  has(reference: string): boolean {
    return this.#counts.has(reference);
  }

  /**
   * Whether the view's caches keep this Secret/ConfigMap: one a copy names, or any while a copies
   * cache is still listing (at start the Secrets may list first; dropping them then would cost a
   * GET per reference once the copies arrive).
   */
  keeps(reference: string): boolean {
    return this.#warming.size > 0 || this.#counts.has(reference);
  }

  /** A copies cache of the view begins to list (`token` names it). */
  warm(token: object): void {
    this.#warming.add(token);
  }

  /** That cache has listed; whether none is listing any more (the caches may then drop what no copy names). */
  cool(token: object): boolean {
    return this.#warming.delete(token) && this.#warming.size === 0;
  }

  /** Counts the references of a copy that appeared or changed to name them. */
  add(references: string[]): void {
    for (const r of references) this.#counts.set(r, (this.#counts.get(r) ?? 0) + 1);
  }

  /** Uncounts a copy's references (it changed or went); returns those no copy names any more. */
  remove(references: string[]): string[] {
    const unreferenced: string[] = [];
    for (const r of references) {
      const left = (this.#counts.get(r) ?? 0) - 1;
      if (left > 0) this.#counts.set(r, left);
      else if (this.#counts.delete(r)) unreferenced.push(r);
    }
    return unreferenced;
  }
}

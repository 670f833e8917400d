import { isStagingView } from '../../apis/names.ts';
import { byCodeUnit } from '../../apis/order.ts';
import type { APIExportObject } from '../../kcp-client-ts/bindings.ts';
import type { KcpEndpoint } from '../../kcp-client-ts/endpoint.ts';
import type { GroupVersionResource } from '../../kcp-client-ts/types.ts';
import { VirtualWorkspace } from '../../kcp-client-ts/virtual-workspace.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { InformerScope } from '../../runtime/informer-scope.ts';
import { RelatedReferences } from './related-references.ts';

/**
 * One staging view as the sync side uses it: its virtual workspace, a scope for what is watched
 * through it, and the Secrets/ConfigMaps its copies reference (what its related caches keep).
 */
export type StagingView = { name: string; vw: VirtualWorkspace; scope: InformerScope; references: RelatedReferences };

/** What the sync side needs of the staging views: which serve a resource, and when that changes. */
export type StagingViewSource = {
  serving(gvr: GroupVersionResource): StagingView[];
  onChange(listener: () => void): () => void;
};

/** Names the broker gives views; other slices in the staging root are not followed. */
const VIEW_NAME = /^view-[0-9a-f]{20}$/;

/**
 * The broker's staging views as its APIExports in the staging root say (one per API identity of a
 * provider export, see `stagingViewName`), each with the virtual workspace its endpoint slice
 * lists and a scope ended when the view is deleted (its watches go with it). A staging copy is
 * watched through the view its workspace is bound to, whatever the number of staging workspaces.
 */
export class StagingViews implements StagingViewSource {
  readonly #exports: Informer<APIExportObject>;
  readonly #endpoint: KcpEndpoint;
  readonly #parent: InformerScope;
  readonly #views = new Map<string, StagingView>();

  constructor(options: { exports: Informer<APIExportObject>; endpoint: KcpEndpoint; scope: InformerScope }) {
    this.#exports = options.exports;
    this.#endpoint = options.endpoint;
    this.#parent = options.scope;
    this.#exports.onEvent((e) => {
      if (e.type !== 'deleted') return;
      const name = e.object.metadata.name ?? '';
      const view = this.#views.get(name);
      this.#views.delete(name);
      void view?.scope.end();
    });
  }

  /** Takes a view's endpoint slice (every shard holding one of its bindings). Returns whether anything changed. */
  updateEndpoints(sliceName: string, urls: readonly string[]): boolean {
    if (!VIEW_NAME.test(sliceName) || (urls.length === 0 && !this.#views.has(sliceName))) return false;
    return this.#viewOf(sliceName).vw.update(urls);
  }

  serving(gvr: GroupVersionResource): StagingView[] {
    return this.#exports.store
      .list((e) => isStagingView(e) && (e.spec.permissionClaims ?? []).some((c) => c.group === gvr.group && c.resource === gvr.resource))
      .map((e) => this.#viewOf(e.metadata.name ?? ''))
      .sort((a, b) => byCodeUnit(a.name, b.name));
  }

  onChange(listener: () => void): () => void {
    return this.#exports.onEvent(() => listener());
  }

  #viewOf(name: string): StagingView {
    let view = this.#views.get(name);
    if (!view) {
      view = {
        name,
        vw: new VirtualWorkspace(this.#endpoint, name),
        scope: this.#parent.child(`staging view ${name}`),
        references: new RelatedReferences(),
      };
      this.#views.set(name, view);
    }
    return view;
  }
}

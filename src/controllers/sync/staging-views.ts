import { stagingViewName } from '../../apis/names.ts';
import type { APIExportObject } from '../../kcp-client-ts/bindings.ts';
import type { GroupVersionResource } from '../../kcp-client-ts/types.ts';
import type { VirtualWorkspace } from '../../kcp-client-ts/virtual-workspace.ts';
import type { Informer } from '../../runtime/informer.ts';

/** What the sync side needs of the staging views: which serve a resource, and when that changes. */
export type StagingViewSource = {
  serving(gvr: GroupVersionResource): VirtualWorkspace[];
  onChange(listener: () => void): () => void;
};

/**
 * The broker's staging views as its APIExports in the staging root say (one per API identity of a
 * provider export, see `stagingViewName`), each with the virtual workspace its endpoint slice
 * lists. A staging copy is watched through the view claiming its resource, whatever the number
 * of staging workspaces.
 */
export class StagingViews implements StagingViewSource {
  readonly #exports: Informer<APIExportObject>;
  readonly #virtualWorkspaceOf: (name: string) => VirtualWorkspace;

  constructor(options: { exports: Informer<APIExportObject>; virtualWorkspaceOf: (name: string) => VirtualWorkspace }) {
    this.#exports = options.exports;
    this.#virtualWorkspaceOf = options.virtualWorkspaceOf;
  }

  serving(gvr: GroupVersionResource): VirtualWorkspace[] {
    return this.#exports.store
      .list((e) => isStagingView(e) && (e.spec.permissionClaims ?? []).some((c) => c.group === gvr.group && c.resource === gvr.resource))
      .map((e) => this.#virtualWorkspaceOf(e.metadata.name ?? ''))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  onChange(listener: () => void): () => void {
    return this.#exports.onEvent(() => listener());
  }
}

/** Named as the broker names views (an export in the staging root labelled by hand is not one). */
export const isStagingView = (e: APIExportObject): boolean => {
  const identity = e.spec.permissionClaims?.find((c) => c.identityHash)?.identityHash;
  return identity !== undefined && e.metadata.name === stagingViewName(identity);
};

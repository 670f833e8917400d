/** Where the broker's workspaces are (spec section 1); every path is a flag of `run`. */
export type BrokerPaths = {
  home: string;
  acceptAPIExport: string;
  coordination: string;
  stagingRoot: string;
  verificationRoot: string;
  compute: string;
};

export const DEFAULT_PATHS: BrokerPaths = {
  home: 'root:platform',
  acceptAPIExport: 'acceptapis',
  coordination: 'root:platform:broker',
  stagingRoot: 'root:platform:broker:staging',
  verificationRoot: 'root:platform:broker:verification',
  compute: 'root:platform:broker:compute',
};

/** Splits `root:a:b` into parent `root:a` and name `b`. */
export const splitPath = (path: string): { parent: string; name: string } => {
  const at = path.lastIndexOf(':');
  if (at <= 0) throw new Error(`workspace path "${path}" has no parent (expected root:...)`);
  return { parent: path.slice(0, at), name: path.slice(at + 1) };
};

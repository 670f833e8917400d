/**
 * The certificates and keys a sharded kcp needs (hack/kcp/sharded-kcp.ts), made in-process with
 * @peculiar/x509 instead of kcp's Go test helpers: a serving CA every server certificate comes
 * from (so one CA file verifies the cache server, every shard and the front-proxy), a
 * request-header CA and the front-proxy's client certificate signed by it (shards trust the
 * user/group headers of requests presenting it), and one service-account key pair all shards
 * share (a token issued by one shard verifies on the others).
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

const pem = (label: string, der: ArrayBuffer): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

/** PEM ending in a newline (x509's has none; a chain of two must not fuse the END and BEGIN lines). */
const pemOf = (cert: x509.X509Certificate): string => `${cert.toString('pem').trimEnd()}\n`;

/** A certificate and its private key, PEM. */
export type KeyPair = { cert: string; key: string };

export class TestCA {
  readonly #keys: CryptoKeyPair;
  readonly #cert: x509.X509Certificate;

  private constructor(keys: CryptoKeyPair, cert: x509.X509Certificate) {
    this.#keys = keys;
    this.#cert = cert;
  }

  static async create(commonName: string): Promise<TestCA> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomBytes(8).toString('hex'),
      name: `CN=${commonName}`,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * DAY),
      signingAlgorithm: ALG,
      keys: keys as never,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    return new TestCA(keys, cert);
  }

  get certPem(): string {
    return pemOf(this.#cert);
  }

  /** A serving certificate for localhost and 127.0.0.1; `cert` is the leaf followed by this CA. */
  serverCert(commonName: string): Promise<KeyPair> {
    return this.#issue(commonName, x509.ExtendedKeyUsage.serverAuth, [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]);
  }

  /** A client certificate (CN = user name; O = groups, none here). */
  clientCert(commonName: string): Promise<KeyPair> {
    return this.#issue(commonName, x509.ExtendedKeyUsage.clientAuth, []);
  }

  async #issue(commonName: string, usage: x509.ExtendedKeyUsage, names: x509.JsonGeneralNames): Promise<KeyPair> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(8).toString('hex'),
      subject: `CN=${commonName}`,
      issuer: this.#cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * DAY),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey as never,
      signingKey: this.#keys.privateKey as never,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage]),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      ],
    });
    return {
      cert: pemOf(cert) + (usage === x509.ExtendedKeyUsage.serverAuth ? this.certPem : ''),
      key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    };
  }
}

/** The service-account signing key pair shared by every shard (RSA, PEM: PKCS#8 and SPKI). */
export const serviceAccountKeys = (): { privateKey: string; publicKey: string } => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
};

import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const pem = (label: string, der: ArrayBuffer): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

/** A certificate authority of one provider: a self-signed CA that issues server certificates. */
export class CertificateAuthority {
  readonly name: string;
  readonly #keys: CryptoKeyPair;
  readonly #cert: x509.X509Certificate;

  private constructor(name: string, keys: CryptoKeyPair, cert: x509.X509Certificate) {
    this.name = name;
    this.#keys = keys;
    this.#cert = cert;
  }

  static async create(name: string): Promise<CertificateAuthority> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomBytes(8).toString('hex'),
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000),
      signingAlgorithm: ALG,
      keys: keys as never,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    return new CertificateAuthority(name, keys, cert);
  }

  get certificatePem(): string {
    return this.#cert.toString('pem');
  }

  /** A key and a certificate for `fqdn` (CN and DNS SAN), signed by this CA; PEM strings. */
  async issue(fqdn: string): Promise<{ 'tls.crt': string; 'tls.key': string; 'ca.crt': string }> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(8).toString('hex'),
      subject: `CN=${fqdn}`,
      issuer: this.#cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 90 * 24 * 3600 * 1000),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey as never,
      signingKey: this.#keys.privateKey as never,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: fqdn }]),
      ],
    });
    return {
      'tls.crt': cert.toString('pem'),
      'tls.key': pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
      'ca.crt': this.certificatePem,
    };
  }

  /** The CN a PEM certificate was issued for. */
  static subjectCN(certificatePem: string): string | undefined {
    return /CN=([^,]+)/.exec(new x509.X509Certificate(certificatePem).subject)?.[1];
  }
}

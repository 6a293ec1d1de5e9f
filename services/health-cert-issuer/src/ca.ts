// The CA that signs health certificates: from caCertFile/caKeyFile when configured, else the
// development CA generated on first start and kept in the store (every replica loads the same one).
import { readFile } from 'node:fs/promises';
import { createCa, exportCaPem, type HealthCa, loadCa } from '@hostgate/health-cert';
import type { Db } from '@hostgate/service-runtime';

export class CaConfigError extends Error {
  override readonly name = 'CaConfigError';
  readonly code = 'CA_CONFIG';
}

export interface CaSource {
  caCertFile: string | undefined;
  caKeyFile: string | undefined;
  caCommonName: string;
}

export async function openCa(
  db: Db,
  config: CaSource,
): Promise<{ ca: HealthCa; origin: 'file' | 'store' | 'generated' }> {
  if ((config.caCertFile === undefined) !== (config.caKeyFile === undefined)) {
    throw new CaConfigError('caCertFile and caKeyFile must be set together');
  }
  if (config.caCertFile !== undefined && config.caKeyFile !== undefined) {
    const [certificatePem, privateKeyPem] = await Promise.all([
      readFile(config.caCertFile, 'utf8'),
      readFile(config.caKeyFile, 'utf8'),
    ]);
    return { ca: loadCa({ certificatePem, privateKeyPem }), origin: 'file' };
  }
  const stored = await db.query<{ certificate_pem: string; private_key_pem: string }>(
    'SELECT certificate_pem, private_key_pem FROM ca WHERE id = 1',
  );
  const row = stored.rows[0];
  if (row !== undefined) {
    return {
      ca: loadCa({ certificatePem: row.certificate_pem, privateKeyPem: row.private_key_pem }),
      origin: 'store',
    };
  }
  // Replicas starting together: the first insert wins, the others load the winner's CA.
  const pem = exportCaPem(createCa({ commonName: config.caCommonName }));
  const inserted = await db.query(
    'INSERT INTO ca (id, certificate_pem, private_key_pem) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING',
    [pem.certificatePem, pem.privateKeyPem],
  );
  const { rows } = await db.query<{ certificate_pem: string; private_key_pem: string }>(
    'SELECT certificate_pem, private_key_pem FROM ca WHERE id = 1',
  );
  const won = rows[0]!;
  return {
    ca: loadCa({ certificatePem: won.certificate_pem, privateKeyPem: won.private_key_pem }),
    origin: inserted.rowCount === 1 ? 'generated' : 'store',
  };
}

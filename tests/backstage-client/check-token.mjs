// Backstage's catalog client with its `token` option against a Plinth
// running `--auth required`. Usage: node check-token.mjs BASE_URL TOKEN NARROW_TOKEN
// A call without a token is refused (401), with the token it answers, and a
// token without the `read` scope is refused (403).
import { CatalogClient } from '@backstage/catalog-client';
import assert from 'node:assert/strict';

const [base, token, narrow] = process.argv.slice(2);
assert.ok(base && token && narrow, 'usage: node check-token.mjs BASE_URL TOKEN NARROW_TOKEN');
const client = new CatalogClient({ discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` } });

await assert.rejects(
  client.getEntities({ filter: { kind: 'Component' } }),
  (e) => e?.response?.status === 401 || /401/.test(String(e)),
  'without a token the catalogue refuses',
);
const services = await client.getEntities({ filter: { kind: 'Component', 'spec.type': 'service' } }, { token });
assert.ok(services.items.length > 20, `few services: ${services.items.length}`);
const auth = await client.getEntityByRef('component:default/auth-service', { token });
assert.equal(auth.metadata.name, 'auth-service');
const byRefs = await client.getEntitiesByRefs({ entityRefs: ['component:default/auth-service'] }, { token });
assert.equal(byRefs.items[0].metadata.name, 'auth-service');
await assert.rejects(
  client.getEntities({ filter: { kind: 'Component' } }, { token: narrow }),
  (e) => e?.response?.status === 403 || /403/.test(String(e)),
  'a token without the read scope is refused',
);
console.log('catalog-client with its token option: 401 without, answers with, 403 for a narrow token');

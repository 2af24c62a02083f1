// Drives a running Plinth (serving the demo catalogue) with Backstage's own
// catalog client, unchanged. Usage: node check.mjs http://127.0.0.1:PORT
// Exits non-zero on the first failed assertion.
import { CatalogClient } from '@backstage/catalog-client';
import assert from 'node:assert/strict';

const base = process.argv[2];
assert.ok(base, 'usage: node check.mjs BASE_URL');
const client = new CatalogClient({ discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` } });

// getEntities: Backstage filter objects and field projection.
const services = await client.getEntities({
  filter: { kind: 'Component', 'spec.type': 'service' },
  fields: ['kind', 'metadata.name', 'spec.type'],
});
assert.ok(services.items.length > 20, `few services: ${services.items.length}`);
for (const e of services.items) {
  assert.equal(e.kind, 'Component');
  assert.equal(e.spec.type, 'service');
  assert.equal(e.metadata.uid, undefined, 'fields projection dropped uid');
}
const either = await client.getEntities({ filter: [{ kind: 'Model' }, { kind: 'Agent' }] });
assert.deepEqual(new Set(either.items.map(e => e.kind)), new Set(['Model', 'Agent']));
const ordered = await client.getEntities({ filter: { kind: 'Domain' }, order: { field: 'metadata.name', order: 'desc' } });
const names = ordered.items.map(e => e.metadata.name);
assert.deepEqual(names, [...names].sort().reverse());

// getEntityByRef, with relations in Backstage's shape.
const auth = await client.getEntityByRef('component:default/auth-service');
assert.equal(auth.metadata.name, 'auth-service');
assert.match(auth.metadata.uid, /^[0-9a-f-]{36}$/);
assert.ok(auth.relations.some(r => r.type === 'ownedBy' && r.targetRef.startsWith('group:default/')));
assert.ok(auth.relations.some(r => r.type === 'dependencyOf'), 'auth-service has dependents');
assert.equal(await client.getEntityByRef('component:default/no-such-thing'), undefined);

// getEntitiesByRefs keeps order and gives undefined for missing refs.
const byRefs = await client.getEntitiesByRefs({ entityRefs: ['component:default/auth-service', 'api:default/nope'] });
assert.equal(byRefs.items.length, 2);
assert.equal(byRefs.items[0].metadata.name, 'auth-service');
assert.equal(byRefs.items[1], undefined);

// queryEntities: totals, ordering and cursor paging through everything.
const first = await client.queryEntities({
  filter: { kind: 'API' },
  limit: 10,
  orderFields: { field: 'metadata.name', order: 'asc' },
});
assert.ok(first.totalItems > 10, `few APIs: ${first.totalItems}`);
assert.equal(first.items.length, 10);
const seen = first.items.map(e => e.metadata.name);
let cursor = first.pageInfo.nextCursor;
while (cursor) {
  const page = await client.queryEntities({ cursor, limit: 10 });
  seen.push(...page.items.map(e => e.metadata.name));
  cursor = page.pageInfo.nextCursor;
}
assert.equal(seen.length, first.totalItems);
assert.deepEqual(seen, [...seen].sort());
const text = await client.queryEntities({ filter: { kind: 'Component' }, fullTextFilter: { term: 'AUTH' } });
assert.ok(text.items.some(e => e.metadata.name === 'auth-service'));

// getEntityFacets.
const facets = await client.getEntityFacets({ facets: ['kind', 'spec.lifecycle'] });
const kinds = Object.fromEntries(facets.facets.kind.map(f => [f.value, f.count]));
assert.ok(kinds.Component > 100 && kinds.Model > 0 && kinds.Agent > 0, JSON.stringify(kinds));

// Locations.
const locations = await client.getLocations();
assert.ok(locations.items.length >= 1);
const location = await client.getLocationByEntity('component:default/auth-service');
assert.ok(location && location.target.endsWith('catalog-info.yaml'), JSON.stringify(location));

// refreshEntity and validateEntity.
await client.refreshEntity('component:default/auth-service');
const valid = await client.validateEntity(
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'ok' }, spec: { type: 'service', lifecycle: 'production', owner: 'team-a' } },
  'url:https://example.com/catalog-info.yaml',
);
assert.deepEqual(valid, { valid: true });
const invalid = await client.validateEntity(
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'not ok' }, spec: { type: 'service' } },
  'url:https://example.com/catalog-info.yaml',
);
assert.equal(invalid.valid, false);
assert.ok(invalid.errors.length >= 3, JSON.stringify(invalid.errors));

console.log('backstage catalog client: all checks passed');

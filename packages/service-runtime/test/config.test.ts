import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  address,
  boolean,
  ConfigError,
  commonConfig,
  integer,
  loadConfig,
  loadServiceConfig,
  oneOf,
  optionalString,
  parseAddress,
  string,
} from '../src/index.ts';

const schema = {
  listen: address('127.0.0.1:50051', 'gRPC listen address'),
  maxHosts: integer(100, 'hosts per page', { min: 1, max: 1000 }),
  strict: boolean(false, 'refuse unknown algorithms'),
  mode: oneOf(['embedded', 'kafka'], 'embedded', 'bus mode'),
  caPath: optionalString('CA bundle path'),
  name: string('hg', 'display name', { env: 'HOSTGATE_DISPLAY_NAME' }),
};
const opts = { component: 'test-svc', envPrefix: 'HOSTGATE_TEST_SVC_' };

test('defaults come from the schema when nothing overrides them', () => {
  const c = loadConfig(schema, { ...opts, env: {} });
  assert.deepEqual(c, {
    listen: '127.0.0.1:50051',
    maxHosts: 100,
    strict: false,
    mode: 'embedded',
    caPath: undefined,
    name: 'hg',
  });
});

test('environment overrides values, values override defaults; types are parsed', () => {
  const c = loadConfig(schema, {
    ...opts,
    env: { HOSTGATE_TEST_SVC_MAX_HOSTS: '7', HOSTGATE_TEST_SVC_STRICT: 'yes', HOSTGATE_DISPLAY_NAME: 'x' },
    values: { maxHosts: 9, mode: 'kafka', listen: '[::1]:0' },
  });
  assert.equal(c.maxHosts, 7);
  assert.equal(c.strict, true);
  assert.equal(c.mode, 'kafka');
  assert.equal(c.listen, '[::1]:0');
  assert.equal(c.name, 'x');
});

test('an unknown variable under the component prefix is an error naming it', () => {
  assert.throws(
    () => loadConfig(schema, { ...opts, env: { HOSTGATE_TEST_SVC_MAX_HOST: '5' } }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'CONFIG_UNKNOWN_KEY');
      assert.match(err.message, /HOSTGATE_TEST_SVC_MAX_HOST\b/);
      assert.match(err.message, /HOSTGATE_TEST_SVC_MAX_HOSTS/); // lists the known names
      return true;
    },
  );
});

test('variables outside the prefix are left alone (other services, the CLI)', () => {
  const c = loadConfig(schema, {
    ...opts,
    env: { HOSTGATE_OTHER_SVC_ADDRESS: 'nonsense', HOSTGATE_DEBUG: '1' },
  });
  assert.equal(c.listen, '127.0.0.1:50051');
});

test('an unknown key in config values is an error', () => {
  assert.throws(
    () => loadConfig(schema, { ...opts, env: {}, values: { listen: '127.0.0.1:1', lisen: 'x' } }),
    (err: unknown) =>
      err instanceof ConfigError && err.code === 'CONFIG_UNKNOWN_KEY' && /lisen/.test(err.message),
  );
});

test('every invalid value is reported at once with its source', () => {
  assert.throws(
    () =>
      loadConfig(schema, {
        ...opts,
        env: {
          HOSTGATE_TEST_SVC_LISTEN: 'localhost',
          HOSTGATE_TEST_SVC_MAX_HOSTS: '0',
          HOSTGATE_TEST_SVC_STRICT: 'maybe',
        },
        values: { mode: 'zookeeper' },
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 4);
      assert.ok(err.problems.every((p) => p.code === 'CONFIG_INVALID_VALUE'));
      assert.match(err.message, /env HOSTGATE_TEST_SVC_LISTEN: expected host:port/);
      assert.match(err.message, /env HOSTGATE_TEST_SVC_MAX_HOSTS: must be between 1 and 1000, got 0/);
      assert.match(err.message, /env HOSTGATE_TEST_SVC_STRICT: expected true or false/);
      assert.match(err.message, /config key mode: expected one of embedded, kafka/);
      return true;
    },
  );
});

test('integers reject fractions, hex, and unsafe magnitudes', () => {
  const f = integer(1, 'n');
  for (const bad of ['1.5', '0x10', '', '99999999999999999999', 1.5, true])
    assert.throws(() => f.parse(bad), /expected an integer/);
  assert.equal(f.parse(' 42 '), 42);
});

test('addresses: host:port with port 0..65535, IPv6 in brackets', () => {
  assert.deepEqual(parseAddress('127.0.0.1:50051'), { host: '127.0.0.1', port: 50051 });
  assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
  for (const bad of ['127.0.0.1', ':50051', '127.0.0.1:65536', 'a b:1', '::1:5', 'host:-1'])
    assert.throws(() => parseAddress(bad), /host:port|at most 65535/, bad);
});

test('a service config combines common keys (shared env names) with its own prefix', () => {
  const def = {
    name: 'quote-collector',
    config: { ...commonConfig, address: address('127.0.0.1:50051', 'listen') },
  };
  const c = loadServiceConfig(def, {
    HOSTGATE_DATA_DIR: '/tmp/x',
    HOSTGATE_LOG_LEVEL: 'debug',
    HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '127.0.0.1:6000',
  });
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.address, '127.0.0.1:6000');
  assert.equal(c.databaseUrl, undefined);
  assert.throws(
    () => loadServiceConfig(def, { HOSTGATE_LOG_LEVEL: 'loud' }),
    /HOSTGATE_LOG_LEVEL: expected one of/,
  );
  assert.throws(() => loadServiceConfig(def, { HOSTGATE_QUOTE_COLLECTOR_ADRESS: 'x' }), /unknown variable/);
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULTS,
  OPTIONS,
  edgeDatabase,
  isLoopback,
  loadConfig,
  parseRegionTables,
  readCredentialsFile,
  regionTableNames,
  secretsOnCommandLine,
  validateConfig,
  withoutPassword,
} from '../../edge-shim/src/config.js';
import { readQueuesFile } from '../../edge-shim/src/hybrid/declared-queues.js';

// Command-line options, HOLDFAST_* environment variables, defaults, and what is refused.

describe('loadConfig', () => {
  it('uses the defaults when given nothing', () => {
    expect(loadConfig([], {})).toEqual(DEFAULTS);
    expect(DEFAULTS.host).toBe('127.0.0.1');
  });

  it('reads every option from the command line', () => {
    const config = loadConfig(
      [
        '--host', '0.0.0.0', '--port', '0', '--db', '/tmp/x.db', '--durability', 'power', '--credentials', 'AK1:S1',
        '--credentials', 'AK2:with:colons', '--region', 'eu-west-1', '--account-id', '123456789012', '--log-level', 'debug',
        '--public-url', 'https://edge.site.example:9324/', '--admin-host', '10.0.0.5', '--admin-port', '0', '--admin-token-file', '/etc/holdfast/admin-token',
        '--tls-cert', '/etc/holdfast/edge.crt', '--tls-key', '/etc/holdfast/edge.key', '--credentials-file', '/etc/holdfast/credentials',
      ],
      {},
    );
    expect(config).toEqual({
      host: '0.0.0.0',
      port: 0,
      dbFile: '/tmp/x.db',
      durability: 'power',
      credentials: [
        { accessKeyId: 'AK1', secretAccessKey: 'S1' },
        { accessKeyId: 'AK2', secretAccessKey: 'with:colons' },
      ],
      region: 'eu-west-1',
      accountId: '123456789012',
      logLevel: 'debug',
      maxStoreBytes: Infinity,
      diskReserveBytes: 64 * 2 ** 20,
      integrityCheck: 'quick',
      upstream: undefined,
      upstreamRegion: undefined,
      stackOutputs: undefined,
      queuesFile: undefined,
      upstreamTimeoutMs: 2000,
      probeIntervalMs: 1000,
      probeTimeoutMs: 1000,
      recoveryProbes: 5,
      recoveryMs: 10_000,
      breakerFailures: 5,
      replayRate: 2000,
      replayBandwidth: undefined,
      replayConcurrency: 16,
      backlogRetention: 'keep',
      siteId: undefined,
      workflow: undefined,
      workflowRoot: undefined,
      edgeDbFile: undefined,
      agentEnvFile: undefined,
      regionTables: undefined,
      regionDynamoDb: undefined,
      agentStandby: true,
      publicUrl: 'https://edge.site.example:9324',
      adminHost: '10.0.0.5',
      adminPort: 0,
      adminTokenFile: '/etc/holdfast/admin-token',
      tlsCert: '/etc/holdfast/edge.crt',
      tlsKey: '/etc/holdfast/edge.key',
      credentialsFile: '/etc/holdfast/credentials',
    });
  });

  it('reads every option from HOLDFAST_* variables, several credentials separated by commas or spaces', () => {
    const config = loadConfig([], {
      HOLDFAST_HOST: '::',
      HOLDFAST_PORT: '8080',
      HOLDFAST_DB: 'env.db',
      HOLDFAST_DURABILITY: 'power',
      HOLDFAST_CREDENTIALS: 'AK1:S1, AK2:S2\nAK3:S3',
      HOLDFAST_REGION: 'ap-south-1',
      HOLDFAST_ACCOUNT_ID: '210987654321',
      HOLDFAST_LOG_LEVEL: 'warn',
      HOLDFAST_PUBLIC_URL: 'http://edge.site.example:9324',
      HOLDFAST_ADMIN_HOST: '::1',
      HOLDFAST_ADMIN_PORT: '9400',
      HOLDFAST_ADMIN_TOKEN_FILE: 'token',
      HOLDFAST_TLS_CERT: 'edge.crt',
      HOLDFAST_TLS_KEY: 'edge.key',
      HOLDFAST_CREDENTIALS_FILE: 'credentials',
    });
    expect(config).toEqual({
      host: '::',
      port: 8080,
      dbFile: 'env.db',
      durability: 'power',
      credentials: ['1', '2', '3'].map((n) => ({ accessKeyId: `AK${n}`, secretAccessKey: `S${n}` })),
      region: 'ap-south-1',
      accountId: '210987654321',
      logLevel: 'warn',
      maxStoreBytes: Infinity,
      diskReserveBytes: 64 * 2 ** 20,
      integrityCheck: 'quick',
      upstream: undefined,
      upstreamRegion: undefined,
      stackOutputs: undefined,
      queuesFile: undefined,
      upstreamTimeoutMs: 2000,
      probeIntervalMs: 1000,
      probeTimeoutMs: 1000,
      recoveryProbes: 5,
      recoveryMs: 10_000,
      breakerFailures: 5,
      replayRate: 2000,
      replayBandwidth: undefined,
      replayConcurrency: 16,
      backlogRetention: 'keep',
      siteId: undefined,
      workflow: undefined,
      workflowRoot: undefined,
      edgeDbFile: undefined,
      agentEnvFile: undefined,
      regionTables: undefined,
      regionDynamoDb: undefined,
      agentStandby: true,
      publicUrl: 'http://edge.site.example:9324',
      adminHost: '::1',
      adminPort: 9400,
      adminTokenFile: 'token',
      tlsCert: 'edge.crt',
      tlsKey: 'edge.key',
      credentialsFile: 'credentials',
    });
  });

  it('takes an empty variable as unset', () => {
    expect(loadConfig([], { HOLDFAST_HOST: '', HOLDFAST_PORT: '', HOLDFAST_CREDENTIALS: '', HOLDFAST_UPSTREAM: '', HOLDFAST_AGENT_STANDBY: '' })).toEqual(DEFAULTS);
  });

  it('prefers the command line to the environment', () => {
    const config = loadConfig(['--port', '1234', '--credentials', 'CLI:S'], { HOLDFAST_PORT: '4321', HOLDFAST_CREDENTIALS: 'ENV:S' });
    expect(config).toMatchObject({ port: 1234, credentials: [{ accessKeyId: 'CLI', secretAccessKey: 'S' }] });
  });

  it('reads sizes in bytes or with a unit', () => {
    expect(loadConfig(['--max-store-bytes', '10GiB', '--disk-reserve', '512 MB'], {})).toMatchObject({ maxStoreBytes: 10 * 2 ** 30, diskReserveBytes: 512e6 });
    expect(loadConfig([], { HOLDFAST_MAX_STORE_BYTES: '4096', HOLDFAST_DISK_RESERVE: '0' })).toMatchObject({ maxStoreBytes: 4096, diskReserveBytes: 0 });
    expect(loadConfig(['--integrity-check', 'full'], {})).toMatchObject({ integrityCheck: 'full' });
    expect(loadConfig([], { HOLDFAST_INTEGRITY_CHECK: 'off' })).toMatchObject({ integrityCheck: 'off' });
  });

  it('reads the hybrid options from the command line and the environment', () => {
    const cli = loadConfig(
      [
        '--upstream', 'https://sqs.eu-west-1.amazonaws.com', '--upstream-region', 'eu-west-1', '--queues', 'q.json', '--upstream-timeout', '3s',
        '--probe-interval', '250ms', '--probe-timeout', '0.5s', '--recovery-probes', '7', '--recovery-time', '1m', '--breaker-failures', '4', '--replay-rate', '900',
        '--replay-bandwidth', '512KiB',
        '--backlog-retention', 'sqs',
      ],
      {},
    );
    expect(cli).toMatchObject({
      upstream: 'https://sqs.eu-west-1.amazonaws.com',
      upstreamRegion: 'eu-west-1',
      queuesFile: 'q.json',
      upstreamTimeoutMs: 3000,
      probeIntervalMs: 250,
      probeTimeoutMs: 500,
      recoveryProbes: 7,
      recoveryMs: 60_000,
      breakerFailures: 4,
      replayRate: 900,
      replayBandwidth: 512 * 1024,
      backlogRetention: 'sqs',
    });
    // Without --upstream-region, the SDK's own AWS_REGION.
    expect(loadConfig([], { HOLDFAST_UPSTREAM: 'http://localhost:4566', AWS_REGION: 'us-west-2', HOLDFAST_RECOVERY_TIME: '2.5s', HOLDFAST_BACKLOG_RETENTION: 'sqs' })).toMatchObject({
      upstream: 'http://localhost:4566',
      upstreamRegion: 'us-west-2',
      recoveryMs: 2500,
      backlogRetention: 'sqs',
    });
  });

  it('reads the fallback agents\' options', () => {
    const config = loadConfig(
      [
        '--upstream', 'http://localhost:4566', '--upstream-region', 'eu-west-1', '--site-id', 'store-17', '--workflow', 'wf.ts#orders', '--workflow-root', '/srv/app',
        '--edge-db', '/var/lib/holdfast/agents.db', '--agent-env', '/etc/holdfast/agents.env', '--region-tables', 'idempotency=I,workflow=W,state=S',
        '--region-dynamodb', 'http://localhost:4566', '--agent-standby', 'off',
      ],
      {},
    );
    expect(config).toMatchObject({
      siteId: 'store-17',
      workflow: 'wf.ts#orders',
      workflowRoot: '/srv/app',
      edgeDbFile: '/var/lib/holdfast/agents.db',
      agentEnvFile: '/etc/holdfast/agents.env',
      regionTables: { idempotency: 'I', workflow: 'W', state: 'S' },
      regionDynamoDb: 'http://localhost:4566',
      agentStandby: false,
    });
    expect(parseRegionTables('state=S')).toEqual({ state: 'S' });
    expect(regionTableNames('orders')).toEqual({ idempotency: 'orders-idempotency', workflow: 'orders-workflow', state: 'orders-state' });
    expect(regionTableNames('orders', { state: 'S' })).toEqual({ idempotency: 'orders-idempotency', workflow: 'orders-workflow', state: 'S' });
  });

  it('takes the upstream and its region from the stack\'s outputs, for an edge and its agents', () => {
    expect(loadConfig(['--stack-outputs', 'outputs.json#Holdfast', '--site-id', 'store-1'], {})).toMatchObject({ stackOutputs: 'outputs.json#Holdfast', upstream: undefined, siteId: 'store-1' });
    // An emulator's endpoint instead of the stack's, its region still the stack's.
    expect(loadConfig(['--upstream', 'http://localhost:5000'], { HOLDFAST_STACK_OUTPUTS: 'outputs.json' })).toMatchObject({ upstream: 'http://localhost:5000', upstreamRegion: undefined });
  });

  it('answers help', () => {
    expect(loadConfig(['--help'], {})).toBe('help');
  });

  it.each([
    [['--port', 'abc'], {}, /invalid port 'abc'/],
    [['--port', '65536'], {}, /invalid port/],
    [['--port', '-1'], {}, /.+/],
    [['--port', ''], {}, /invalid port ''/],
    [['--nope'], {}, /nope/],
    [['--port'], {}, /port/],
    [['stray'], {}, /stray/],
    [['--credentials', 'no-secret'], {}, /ACCESS_KEY_ID:SECRET_ACCESS_KEY/],
    [['--credentials', ':secret'], {}, /ACCESS_KEY_ID:SECRET_ACCESS_KEY/],
    [['--credentials', 'key:'], {}, /ACCESS_KEY_ID:SECRET_ACCESS_KEY/],
    [['--durability', 'sometimes'], {}, /durability/],
    [['--log-level', 'loud'], {}, /log level/],
    [['--account-id', '42'], {}, /12 digits/],
    [['--region', 'US East'], {}, /region/],
    [['--host', '0.0.0.0'], {}, /refusing to listen on 0\.0\.0\.0 without credentials/],
    [[], { HOLDFAST_HOST: '10.1.2.3' }, /refusing to listen on 10\.1\.2\.3/],
    [['--host', 'example.com'], {}, /refusing/],
    [['--credentials', 'K:S', '--host', ''], {}, /host must not be empty/],
    [['--db', ''], {}, /database file must not be empty/],
    [['--upstream', 'https://sqs.eu-west-1.amazonaws.com'], {}, /needs its region/],
    [['--upstream', 'sqs.eu-west-1.amazonaws.com', '--upstream-region', 'eu-west-1'], {}, /invalid upstream/],
    [['--upstream', 'https://sqs.eu-west-1.amazonaws.com/123/queue', '--upstream-region', 'eu-west-1'], {}, /invalid upstream/],
    [['--probe-interval', 'often'], {}, /invalid probe interval/],
    [['--recovery-probes', '0'], {}, /recovery probes must be at least 1/],
    [['--replay-rate', '1.5'], {}, /invalid replay rate/],
    [['--replay-bandwidth', 'fast'], {}, /invalid replay bandwidth/],
    [['--backlog-retention', 'forever'], {}, /backlog retention must be keep or sqs/],
    [['--site-id', 'store-1'], {}, /run only in front of a region: pass --upstream \(or --stack-outputs\)/],
    [['--site-id', 'store 1', '--upstream', 'http://localhost:4566', '--upstream-region', 'eu-west-1'], {}, /invalid site id/],
    [['--site-id', 's', '--upstream', 'http://localhost:4566', '--upstream-region', 'eu-west-1', '--region-tables', 'ledger=x'], {}, /invalid region tables/],
    [['--agent-standby', 'maybe'], {}, /give on or off/],
    [['--max-store-bytes', '10 parsecs'], {}, /invalid store bound/],
    [['--max-store-bytes', '0'], {}, /store bound must be a positive/],
    [[], { HOLDFAST_DISK_RESERVE: '-5' }, /invalid disk reserve/],
    [['--admin-host', '0.0.0.0'], {}, /refusing to serve the operator pages on 0\.0\.0\.0 without a token/],
    [['--admin-host', ''], {}, /host must not be empty/],
    [['--admin-port', '70000'], {}, /invalid port/],
    [['--tls-cert', 'edge.crt'], {}, /TLS needs both --tls-cert and --tls-key/],
    [[], { HOLDFAST_TLS_KEY: 'edge.key' }, /TLS needs both/],
    [['--public-url', 'edge.site.example'], {}, /invalid public URL/],
    [['--public-url', 'https://edge.site.example/sqs'], {}, /invalid public URL/],
    [['--public-url', 'https://user:pw@edge.site.example'], {}, /invalid public URL/],
    [['--integrity-check', 'thorough'], {}, /integrity check must be full, quick or off/],
  ])('refuses %j %j', (argv, env, message) => {
    expect(() => loadConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadConfig(argv, env)).toThrow(message);
  });

  // Issue 17: one form for every duration, the shim's and the drill's, so that no option reads a bare number its own way.
  it.each(Object.entries(OPTIONS).filter(([, option]) => option.placeholder === 'T'))('takes --%s as 500ms, 30s or 2m and refuses a bare number', (key, option) => {
    const hybrid = ['--upstream', 'http://localhost:4566', '--upstream-region', 'eu-west-1'];
    const value = (text: string) => (loadConfig([...hybrid, `--${option.flag}`, text], {}) as Record<string, unknown>)[key];
    expect([value('500ms'), value('30s'), value('2m'), value('1.5s')]).toEqual([500, 30_000, 120_000, 1500]);
    for (const text of ['2000', '2 h', 'soon']) expect(() => value(text), text).toThrow(/give a duration with its unit, such as 500ms, 30s or 2m/);
    expect(() => loadConfig(hybrid, { [option.variable]: '2000' }), option.variable).toThrow(/with its unit/);
  });

  it.each(['localhost', '127.0.0.1', '127.1.2.3', '::1'])('listens on loopback %s without credentials', (host) => {
    expect(loadConfig(['--host', host], {})).toMatchObject({ host, credentials: [] });
  });

  it('listens on any address with credentials', () => {
    expect(loadConfig(['--host', '0.0.0.0', '--credentials', 'K:S'], {})).toMatchObject({ host: '0.0.0.0' });
    expect(loadConfig(['--host', '0.0.0.0', '--credentials-file', '/etc/holdfast/credentials'], {})).toMatchObject({ host: '0.0.0.0' });
  });

  it('serves the operator pages beyond loopback with a token', () => {
    expect(loadConfig(['--admin-host', '0.0.0.0', '--admin-token-file', 'token'], {})).toMatchObject({ adminHost: '0.0.0.0', adminTokenFile: 'token' });
  });

  it('takes the credentials file systemd hands over (LoadCredential=) when no other is given', () => {
    const directory = mkdtempSync(join(tmpdir(), 'holdfast-credentials-directory-'));
    try {
      expect(loadConfig([], { CREDENTIALS_DIRECTORY: directory })).toMatchObject({ credentialsFile: undefined });
      writeFileSync(join(directory, 'holdfast-credentials'), 'AK:S\n');
      expect(loadConfig([], { CREDENTIALS_DIRECTORY: directory })).toMatchObject({ credentialsFile: join(directory, 'holdfast-credentials') });
      expect(loadConfig(['--credentials-file', 'mine'], { CREDENTIALS_DIRECTORY: directory })).toMatchObject({ credentialsFile: 'mine' });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('names the secret options given on the command line', () => {
    expect(secretsOnCommandLine(['--credentials', 'K:S', '--port', '0'])).toEqual(['--credentials']);
    expect(secretsOnCommandLine(['--credentials-file', 'f'])).toEqual([]);
  });
});

describe('--db on PostgreSQL', () => {
  it("takes a postgres:// URL, for a hybrid edge too, and keeps the agents' stores in it unless given another URL", () => {
    const db = 'postgres://holdfast:secret@db.site:5432/holdfast';
    const hybrid = { ...DEFAULTS, dbFile: db, upstream: 'https://sqs.eu-west-1.amazonaws.com', upstreamRegion: 'eu-west-1' };
    expect(validateConfig({ ...DEFAULTS, dbFile: db }).dbFile).toBe(db);
    expect(edgeDatabase(validateConfig(hybrid))).toBe(db);
    expect(edgeDatabase(validateConfig({ ...hybrid, edgeDbFile: 'postgres://holdfast@db.site/agents' }))).toBe('postgres://holdfast@db.site/agents');
    expect(() => validateConfig({ ...hybrid, edgeDbFile: '/var/lib/holdfast/edge-agents.db' })).toThrow(/give --edge-db a postgres:\/\/ URL/);
  });

  it('refuses a URL of another scheme as --db or --edge-db rather than take it for a file name', () => {
    expect(() => validateConfig({ ...DEFAULTS, dbFile: 'mysql://holdfast@db.site/holdfast' })).toThrow(ConfigError);
    expect(() => validateConfig({ ...DEFAULTS, edgeDbFile: 'sqlite://edge.db' })).toThrow(/neither a file nor a postgres:\/\//);
  });

  it('masks the password of the URL where it is logged', () => {
    expect(withoutPassword('postgres://holdfast:secret@db.site:5432/holdfast')).toBe('postgres://holdfast:***@db.site:5432/holdfast');
    expect(withoutPassword('postgresql://holdfast@db.site/holdfast')).toBe('postgresql://holdfast@db.site/holdfast');
    expect(withoutPassword('data/holdfast.db')).toBe('data/holdfast.db');
  });
});

describe('readCredentialsFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-credentials-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const path = join(dir, `credentials-${Math.random()}`);
    writeFileSync(path, text);
    return path;
  };

  it('reads a KEY:SECRET line each, skipping blank lines and comments', () => {
    expect(readCredentialsFile(file('# producers\nAK1:S1\n\n  AK2:with:colons  \r\n'))).toEqual([
      { accessKeyId: 'AK1', secretAccessKey: 'S1' },
      { accessKeyId: 'AK2', secretAccessKey: 'with:colons' },
    ]);
  });

  it('refuses a file without credentials, or a line that is not one, without quoting it', () => {
    expect(() => readCredentialsFile(file('# none\n'))).toThrow(/holds no credentials/);
    const bad = file('AK1:S1\nsecret-without-key\n');
    expect(() => readCredentialsFile(bad)).toThrow(/line 2 of the credentials file/);
    expect(() => readCredentialsFile(bad)).not.toThrow(/secret-without-key/);
    expect(() => readCredentialsFile(join(dir, 'missing'))).toThrow(/cannot read the credentials file .*ENOENT/);
  });
});

describe('isLoopback', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['128.0.0.1', false],
    ['192.168.1.1', false],
    ['::ffff:10.0.0.1', false],
    ['localhost.example.com', false],
  ])('%s: %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});

describe('readQueuesFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-queues-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads the example in deploy/', () => {
    const queues = readQueuesFile(fileURLToPath(new URL('../../deploy/queues.example.json', import.meta.url)));
    expect(queues.map((queue) => queue.name)).toEqual(['payments-authorize-dlq.fifo', 'payments-authorize.fifo', 'telemetry']);
    expect(queues[1]!.attributes).toMatchObject({ FifoQueue: 'true', VisibilityTimeout: '180' });
    // Replay priorities: payments first, telemetry last, the rest in between.
    expect(queues.map((queue) => queue.priority)).toEqual([undefined, 10, -10]);
  });

  it.each([
    ['not JSON', '{queues', /cannot read the queues file/],
    ['no list', '{"queue": []}', /must hold \{"queues"/],
    ['a queue without a name', '{"queues": [{"attributes": {}}]}', /queue 1 .* needs a "name"/],
    ['an attribute that is not a string', '{"queues": [{"name": "q", "attributes": {"DelaySeconds": 5}}]}', /string "attributes"/],
    ['a priority that is not a whole number', '{"queues": [{"name": "q", "priority": 1.5}]}', /"priority" must be a whole number from -1000 to 1000/],
    ['a priority out of range', '{"queues": [{"name": "q", "priority": 5000}]}', /"priority" must be a whole number/],
  ])('refuses %s', (_, text, message) => {
    expect(() => readQueuesFile(file('queues.json', text))).toThrow(message);
  });
});

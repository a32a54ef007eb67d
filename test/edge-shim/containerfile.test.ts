import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CREDENTIALS, sqsClient } from '../helpers/shim.js';

// deploy/Containerfile, built without a container engine: no registry of the node base images is
// reachable from the project's machines. Its steps run here as written, each stage in a clean
// directory of its own standing for the image's file system (the machine's Node standing for the
// image's), and what the last stage holds is started as its ENTRYPOINT, ENV and HEALTHCHECK say.
// npm ci runs as written and prefers the npm cache, so that a warm machine does not download again;
// better-sqlite3's prebuilt binary, which it would fetch from GitHub (out of reach here) or else
// compile for minutes, comes from a mirror on loopback serving the one this checkout built, as a
// site's own mirror would (npm_config_better_sqlite3_binary_host, read by prebuild-install).

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** The Containerfile's instructions by stage, continuation lines joined and comments left out. */
function stages(text: string): Instruction[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const result: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const match = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    if (match[1] === 'FROM') result.push([]);
    result.at(-1)!.push({ keyword: match[1]!, args: match[2]! });
  }
  return result;
}

const containerfile = readFileSync(join(REPO, 'deploy', 'Containerfile'), 'utf8');
const [buildStage, imageStage] = stages(containerfile);
const root = mkdtempSync(join(tmpdir(), 'holdfast-containerfile-'));
const build = join(root, 'build');
const image = join(root, 'image');
let child: ChildProcess | undefined;

/** Runs a stage's WORKDIR, COPY and RUN steps in `dir` (its WORKDIR); COPY --from takes from the build stage's. */
async function runStage(instructions: readonly Instruction[], dir: string, from: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const { keyword, args } of instructions) {
    if (keyword === 'COPY') {
      const parts = args.split(/\s+/);
      const fromStage = parts[0]!.startsWith('--from=');
      const sources = parts.slice(fromStage ? 1 : 0, -1).map((source) => (fromStage ? join(from, source.replace(/^\/src\/?/, '')) : join(REPO, source)));
      const destination = join(dir, parts.at(-1)!);
      for (const source of sources) {
        // A COPY of files into a directory (ending in /) puts each in it by its name; otherwise to the path given.
        const target = parts.at(-1)!.endsWith('/') && !statSync(source).isDirectory() ? join(destination, basename(source)) : destination;
        cpSync(source, target, { recursive: true });
      }
    } else if (keyword === 'RUN' && dir === build) {
      // npm ci as written, from the npm cache when it has the packages.
      const command = args.replace(/^npm ci$/, 'npm ci --prefer-offline --no-audit --no-fund');
      await run('sh', ['-c', command], { cwd: dir, maxBuffer: 64 * 2 ** 20, env: { ...process.env, npm_config_better_sqlite3_binary_host: binaryMirror } });
    }
    // The image stage's RUN makes the volume's directory for the node user: the test gives a directory of its own.
  }
}

function env(instructions: readonly Instruction[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const { args } of instructions.filter((instruction) => instruction.keyword === 'ENV')) {
    for (const [, name, value] of args.matchAll(/(\w+)=(\S+)/g)) values[name!] = value!;
  }
  return values;
}

let binaryMirror = '';
let mirror: Server | undefined;

beforeAll(async () => {
  // The prebuilt binary as prebuild-install's archives hold it, whatever path is asked for.
  const archive = join(root, 'better-sqlite3-prebuilt.tar.gz');
  await run('tar', ['-czf', archive, '-C', join(REPO, 'node_modules', 'better-sqlite3'), 'build/Release/better_sqlite3.node']);
  mirror = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(archive)));
  await new Promise<void>((resolve) => mirror!.listen(0, '127.0.0.1', resolve));
  binaryMirror = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
  await runStage(buildStage!, build, build);
  await runStage(imageStage!, image, build);
}, 1_200_000);

afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  await new Promise((resolve) => (mirror ? mirror.close(resolve) : resolve(undefined)));
  rmSync(root, { recursive: true, force: true });
}, 300_000);

describe('deploy/Containerfile', () => {
  it('builds on the Node the project names, with a base image on a supported Node', () => {
    expect(containerfile).toMatch(/^FROM node:22-bookworm AS build$/m);
    expect(containerfile).toMatch(/^FROM node:22-bookworm-slim$/m);
    const { engines } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(engines.node).toMatch(/^>=20/);
  });

  it('ships the runtime dependencies and none of the build\'s', () => {
    const modules = join(image, 'node_modules');
    for (const needed of ['better-sqlite3', '@aws-sdk/client-sqs', 'pino', 'hpagent', 'proxy-from-env']) expect(existsSync(join(modules, needed)), needed).toBe(true);
    for (const buildOnly of ['tsx', 'esbuild', 'aws-cdk-lib', 'typescript', 'vitest', '@aws-crypto/sha256-js']) expect(existsSync(join(modules, buildOnly)), buildOnly).toBe(false);
  });

  it('starts as its ENTRYPOINT says, answers SQS and its HEALTHCHECK, and stops on its STOPSIGNAL', { timeout: 120_000 }, async () => {
    const entrypoint = JSON.parse(imageStage!.find((instruction) => instruction.keyword === 'ENTRYPOINT')!.args) as string[];
    const healthcheck = JSON.parse(/CMD (\[.*\])/.exec(imageStage!.find((instruction) => instruction.keyword === 'HEALTHCHECK')!.args)![1]!) as string[];
    const stopSignal = imageStage!.find((instruction) => instruction.keyword === 'STOPSIGNAL')!.args as NodeJS.Signals;
    const credentials = join(root, 'credentials');
    writeFileSync(credentials, `${TEST_CREDENTIALS.accessKeyId}:${TEST_CREDENTIALS.secretAccessKey}\n`, { mode: 0o600 });
    // The image's environment, with a free port (others run on this machine) and the volume in the test's directory.
    const imageEnv = { ...env(imageStage!), HOLDFAST_PORT: '0', HOLDFAST_ADMIN_PORT: '0', HOLDFAST_DB: join(root, 'volume', 'holdfast.db'), HOLDFAST_CREDENTIALS_FILE: credentials };
    // The machine's Node stands for the image's: only PATH and HOME come from here.
    const baseEnv = { PATH: process.env.PATH!, HOME: root };
    child = spawn(entrypoint[0] === 'node' ? process.execPath : entrypoint[0]!, entrypoint.slice(1), { cwd: image, env: { ...baseEnv, ...imageEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      void exited.then((code) => reject(new Error(`the image's entrypoint exited with ${code} before listening`)));
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { url?: string };
        if (entry.url) resolve(entry.url);
      });
    });
    expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const port = new URL(url).port;
    const sqs = sqsClient(`http://127.0.0.1:${port}`);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'in-the-image' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'hello' }));
    sqs.destroy();
    const health = await run(process.execPath, healthcheck.slice(1), { cwd: image, env: { ...baseEnv, ...imageEnv, HOLDFAST_PORT: port } }).then(
      () => 0,
      (error: { code: number }) => error.code,
    );
    expect(health).toBe(0);
    child.kill(stopSignal);
    expect(await exited).toBe(0);
  });
});

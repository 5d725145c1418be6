import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpTransport } from '@warren/amqp';
import {
  DEFAULT_RETRY_POLICY,
  encodeJob,
  HEADERS,
  jobRoutingKey,
  type MessageProperties,
  topologyFor,
} from '@warren/core';
import {
  type PermissionsDeclarationInput,
  type PermissionsPlan,
  parsePermissionsDeclaration,
  planPermissions,
} from '@warren/security';
import { type ChannelModel, type ConsumeMessage, connect } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, Worker } from '../src/index.ts';
import { waitFor } from './support.ts';

// Generates permissions for two teams, applies them to a fresh vhost with the generated
// rabbitmqctl script, and has the broker itself say what each account may and may not do.

const CLI = fileURLToPath(new URL('../bin/warren-permissions.js', import.meta.url));
const ECHO = fileURLToPath(new URL('./fixtures/echo.ts', import.meta.url));

const id = randomUUID().slice(0, 8);
const vhost = `warren-permissions-${id}`;
const users = {
  aWorker: `${id}-a-worker`,
  aApi: `${id}-a-api`,
  bWorker: `${id}-b-worker`,
  bApi: `${id}-b-api`,
};
const PASSWORD = `test-${randomUUID()}`;
/** One retry, soon: a job that fails goes through a delay queue once, then to dead letters. */
const RETRY = { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 100, jitter: 0 };
/** Team B's model type has a dot in it: its names must be escaped to be granted. */
const B_MODEL = 'b.embed';

const declaration: PermissionsDeclarationInput = {
  vhost,
  teams: [
    {
      name: 'team-a',
      workers: [{ user: users.aWorker, modelTypes: ['echo'], scopes: ['public'], retry: RETRY }],
      producers: [
        { user: users.aApi, modelTypes: ['echo'], scopes: ['public'], replyQueues: true },
      ],
    },
    {
      name: 'team-b',
      workers: [{ user: users.bWorker, modelTypes: [B_MODEL], scopes: ['public'] }],
      producers: [{ user: users.bApi, modelTypes: [B_MODEL], scopes: ['public'] }],
    },
  ],
};

function urlFor(user: string, host = vhost): string {
  return `amqp://${user}:${PASSWORD}@127.0.0.1:5672/${encodeURIComponent(host)}`;
}

function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf-8' });
}

interface PermissionRow {
  user: string;
  configure: string;
  write: string;
  read: string;
}

interface TopicRow {
  user: string;
  exchange: string;
  write: string;
  read: string;
}

/** What rabbitmqctl lists for a vhost, as JSON. */
function listed<Row>(command: string, host: string): Row[] {
  return JSON.parse(rabbitmqctl(command, '-p', host, '--formatter', 'json')) as Row[];
}

const byUser = (a: { user: string }, b: { user: string }) => (a.user < b.user ? -1 : 1);
const byUserAndExchange = (a: TopicRow, b: TopicRow) =>
  a.user === b.user ? (a.exchange < b.exchange ? -1 : 1) : byUser(a, b);

function rabbitmqctlWithInput(input: string, ...args: string[]): string {
  return execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf-8', input });
}

/** Runs the generator's CLI as an operator would; fails the test on a non-zero exit. */
function generate(file: string, ...args: string[]): string {
  const result = spawnSync(process.execPath, [CLI, file, ...args], { encoding: 'utf-8' });
  if (result.status !== 0) throw new Error(`warren-permissions failed: ${result.stderr}`);
  return result.stdout;
}

/** Runs `fn`, ignoring a failure: cleanup must go on past what a failed test left half done. */
function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // Already gone, or never made.
  }
}

let dir: string;
let plan: PermissionsPlan;
const connections: ChannelModel[] = [];
const transports: AmqpTransport[] = [];
let worker: Worker | undefined;

async function connectAs(user: string): Promise<ChannelModel> {
  const connection = await connect(urlFor(user));
  connections.push(connection);
  return connection;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warren-permissions-'));
  const file = join(dir, 'declaration.json');
  await writeFile(file, JSON.stringify(declaration));
  plan = planPermissions(parsePermissionsDeclaration(declaration));

  const script = join(dir, 'apply.sh');
  await writeFile(script, generate(file, '--format', 'rabbitmqctl'));
  const passwords = Object.fromEntries(
    plan.accounts.map((account) => [account.passwordEnv, PASSWORD]),
  );
  const applied = spawnSync('sh', [script], {
    encoding: 'utf-8',
    env: { PATH: process.env.PATH, ...passwords },
  });
  if (applied.status !== 0) throw new Error(`the generated script failed: ${applied.stderr}`);
  // The test reads dead letters as the administrator.
  rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await Promise.all(transports.map((transport) => transport.close().catch(() => {})));
  await Promise.all(connections.map((connection) => connection.close().catch(() => {})));
  quietly(() => rabbitmqctl('delete_vhost', vhost));
  for (const user of Object.values(users)) quietly(() => rabbitmqctl('delete_user', user));
  await rm(dir, { recursive: true, force: true });
}, 120_000);

/** What the broker made of one publish: confirmed, or the channel it closed, with its code. */
async function publishAs(
  user: string,
  exchange: string,
  routingKey: string,
  properties: MessageProperties,
  body: Buffer,
): Promise<'confirmed' | { code: number; message: string }> {
  const channel = await (await connectAs(user)).createConfirmChannel();
  const closed = new Promise<{ code: number; message: string }>((resolve) => {
    channel.on('error', (error: Error & { code: number }) =>
      resolve({ code: error.code, message: error.message }),
    );
  });
  const confirmed = new Promise<'confirmed'>((resolve, reject) => {
    channel.publish(exchange, routingKey, body, properties, (error) =>
      error ? reject(error) : resolve('confirmed'),
    );
  });
  return Promise.race([confirmed.catch(() => closed), closed]);
}

/** A job of team A's, published as its producer with its own `user_id`. */
function jobOfTeamA(input: object, replyTo?: string): MessageProperties & { body: Buffer } {
  const { body, properties } = encodeJob({
    modelType: 'echo',
    tenant: 'acme',
    input,
    ...(replyTo === undefined ? {} : { replyTo }),
  });
  return { ...properties, userId: users.aApi, body };
}

describe('permissions generated for two teams, applied with the generated script', () => {
  const aTopology = topologyFor('echo', { retry: { ...DEFAULT_RETRY_POLICY, ...RETRY } });
  const bTopology = topologyFor(B_MODEL);

  // Team A's worker: the real Worker, as its own account, configured from the same declaration.
  beforeAll(async () => {
    const settings = plan.workers.find((w) => w.user === users.aWorker)!;
    const config = parseConfig(
      {
        dedupe: { store: 'none' },
        handlers: [
          {
            module: ECHO,
            retry: RETRY,
            clearance: { producers: settings.clearance.echo!.producers },
          },
        ],
        supervisor: { budget: { maxRestarts: 0 } },
        security: { relays: settings.relays },
      },
      dir,
    );
    // Credentials in AMQP_URL, as docs/operating.md asks: the worker publishes as that account.
    const env = { AMQP_URL: urlFor(users.aWorker) };
    worker = await Worker.start({ config, logger: pino({ level: 'silent' }), env });
  }, 60_000);

  it("let team A's worker, as its own account, declare its topology and answer team A's producer", async () => {
    const channel = await (await connectAs(users.aApi)).createChannel();
    const { queue: replyQueue } = await channel.assertQueue('', { exclusive: true });
    const replies: ConsumeMessage[] = [];
    await channel.consume(replyQueue, (m) => m && replies.push(m), { noAck: true });
    const { body, ...properties } = jobOfTeamA({ text: 'hello' }, replyQueue);
    channel.publish(aTopology.jobsExchange, jobRoutingKey('echo', 'public'), body, properties);

    await waitFor(() => replies.length === 1, 'the result');
    expect(JSON.parse(replies[0]!.content.toString())).toEqual({ echo: 'hello' });
    expect(replies[0]!.properties.userId).toBe(users.aWorker);
    expect(worker!.consumers[0]!.consumer.state).toBe('consuming');
  });

  it("let team B's worker declare its own topology, dotted model type and all", async () => {
    const transport = new AmqpTransport({ url: urlFor(users.bWorker) });
    transports.push(transport);
    await transport.connect();

    await expect(transport.declare(bTopology)).resolves.toBeUndefined();
  });

  it("refuse team A's worker account team B's queue, and a binding to team B's jobs", async () => {
    const connection = await connectAs(users.aWorker);
    const consuming = await connection.createChannel();
    consuming.on('error', () => {});
    const binding = await connection.createChannel();
    binding.on('error', () => {});

    await expect(consuming.consume(bTopology.queue, () => {})).rejects.toMatchObject({
      code: 403,
      message: expect.stringContaining('ACCESS_REFUSED'),
    });
    // Its own queue, but team B's routing key: RabbitMQ's topic permission refuses the binding.
    await expect(
      binding.bindQueue(aTopology.queue, aTopology.jobsExchange, jobRoutingKey(B_MODEL, 'public')),
    ).rejects.toMatchObject({ code: 403, message: expect.stringContaining('ACCESS_REFUSED') });
  });

  it("let team A's producer publish its scope, and refuse another scope and team B's model type", async () => {
    const { body, ...properties } = jobOfTeamA({ text: 'x' });
    const jobs = aTopology.jobsExchange;
    const publish = (exchange: string, key: string) =>
      publishAs(users.aApi, exchange, key, properties, body);

    expect(await publish(jobs, jobRoutingKey('echo', 'public'))).toBe('confirmed');
    for (const key of [jobRoutingKey('echo', 'restricted'), jobRoutingKey(B_MODEL, 'public')]) {
      expect(await publish(jobs, key)).toEqual({
        code: 403,
        message: expect.stringContaining(`ACCESS_REFUSED - access to topic '${key}'`),
      });
    }
    // Nor may it go round the jobs exchange, straight to a queue.
    expect(await publish('', aTopology.queue)).toMatchObject({ code: 403 });
  });

  it("let the worker republish a failed job with its own user_id, believed as a relay's", async () => {
    const admin = await connect(`amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`);
    connections.push(admin);
    const channel = await admin.createChannel();
    const deadLetters: ConsumeMessage[] = [];
    await channel.consume(aTopology.deadLetterQueue, (m) => m && deadLetters.push(m), {
      noAck: true,
    });

    const { body, ...properties } = jobOfTeamA({ text: 'x', failWith: 'boom' });
    const key = jobRoutingKey('echo', 'public');
    expect(await publishAs(users.aApi, aTopology.jobsExchange, key, properties, body)).toBe(
      'confirmed',
    );

    await waitFor(
      () => deadLetters.some((m) => m.properties.messageId === properties.messageId),
      'the dead letter',
    );
    const dead = deadLetters.find((m) => m.properties.messageId === properties.messageId)!;
    // Retried once through a delay queue, then dead-lettered: both republished as the worker.
    expect(dead.properties.userId).toBe(users.aWorker);
    expect(dead.properties.headers?.[HEADERS.producer]).toBe(users.aApi);
    expect(dead.properties.headers?.[HEADERS.attempts]).toBe(2);
    expect(dead.properties.headers?.[HEADERS.errorCode]).toBe('WARREN_HANDLER_FAILED');
    expect(worker!.consumers[0]!.consumer.state).toBe('consuming');
  });
});

describe('the definitions, imported with rabbitmqctl import_definitions', () => {
  const host = `${vhost}-definitions`;
  const account = { worker: `${id}-d-worker`, api: `${id}-d-api` };

  afterAll(() => {
    quietly(() => rabbitmqctl('delete_vhost', host));
    for (const user of Object.values(account)) quietly(() => rabbitmqctl('delete_user', user));
  }, 60_000);

  it('grant what the plan says, and let the worker declare its topology once given a password', async () => {
    const own: PermissionsDeclarationInput = {
      vhost: host,
      teams: [
        {
          name: 'team-d',
          workers: [{ user: account.worker, modelTypes: ['echo'], scopes: ['public'] }],
          producers: [{ user: account.api, modelTypes: ['echo'], scopes: ['public'] }],
        },
      ],
    };
    const file = join(dir, 'definitions-declaration.json');
    await writeFile(file, JSON.stringify(own));
    const definitions = generate(file, '--format', 'definitions');
    const expected = planPermissions(parsePermissionsDeclaration(own));

    // From standard input: rabbitmqctl may run as another user, who cannot read the temp folder.
    rabbitmqctlWithInput(definitions, 'import_definitions');

    // The import finishes in the background.
    let permissions: PermissionRow[] = [];
    const deadline = Date.now() + 30_000;
    while (permissions.length < 2 && Date.now() < deadline) {
      quietly(() => {
        permissions = listed<PermissionRow>('list_permissions', host);
      });
      if (permissions.length < 2) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(permissions.sort(byUser)).toEqual(
      expected.accounts.map(({ user, configure, write, read }) => ({
        user,
        configure,
        write,
        read,
      })),
    );
    expect(listed<TopicRow>('list_topic_permissions', host).sort(byUserAndExchange)).toEqual(
      expected.accounts.flatMap(({ user, topic }) =>
        topic.map(({ exchange, write, read }) => ({ user, exchange, write, read })),
      ),
    );

    rabbitmqctl('change_password', account.worker, PASSWORD);
    const transport = new AmqpTransport({ url: urlFor(account.worker, host) });
    transports.push(transport);
    await transport.connect();
    await expect(transport.declare(topologyFor('echo'))).resolves.toBeUndefined();
  });
});

describe('the warren-permissions command', () => {
  it('exits 2 and names the field of a bad declaration', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ vhost: '/', teams: [{ name: 'x', workers: [{}] }] }));

    const result = spawnSync(process.execPath, [CLI, file], { encoding: 'utf-8' });

    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'warren-permissions: declaration.teams[0].workers[0].user: expected string, found nothing',
    );
  });
});

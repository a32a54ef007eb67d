import type { Logger } from 'pino';
import { createQueue } from '../../sqs/actions/create-queue.js';
import { setQueueAttributes } from '../../sqs/actions/set-queue-attributes.js';
import type { QueueAttributes } from '../../sqs/queue-attributes.js';
import { parseQueueUrl } from '../../sqs/queues.js';
import type { LocalQueues } from '../local-queues.js';
import type { MirrorRow, MirrorRows, MirrorState, QueueView } from '../site/ports.js';
import { RegionUnavailable } from './client.js';
import { call } from '../../sqs/storage/step.js';

/**
 * The attributes that decide how the edge takes and serves messages while the region is away:
 * what it validates a send against and how the local queue behaves. Policies, tags and encryption
 * settings stay the region's.
 */
const MIRRORED = [
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'VisibilityTimeout',
  'RedrivePolicy',
  'RedriveAllowPolicy',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
] as const;
// A queue's attributes are fetched again when a request meets it this long after the last time.
const REFRESH_AFTER_MS = 5 * 60_000;

const SQS_ARN = /^arn:([^:]+):sqs:([^:]*):([^:]*):([^:]+)$/;

/** The queue name an SQS ARN of any account and region names; undefined for what is no SQS ARN. */
export const queueNameOfArn = (arn: string): string | undefined => SQS_ARN.exec(arn)?.[4];

/**
 * The edge's durable mirror of the region's queues, and the one place where names map between the
 * two: a queue has the same name on both sides, its URL and ARN differ (the edge's own account and
 * region in URLs it hands out and ARNs it shows; the region's in requests to the region). Each
 * queue the edge has seen also exists in the local store with the attributes that matter offline
 * (FIFO, deduplication, delays, sizes, redrive), so that sends can be validated and taken while the
 * region is away. It only records and applies what the region said: asking the region is the
 * Region's (region.ts).
 */
export class QueueMirror {
  private rows = new Map<string, MirrorRow>();
  /**
   * Per reload under way, the queues this node changed meanwhile: its read may predate the change,
   * which must not be undone until the next reload (a queue linked a moment ago read as pending).
   */
  private readonly reloads = new Set<Set<string>>();
  /** The region's account, from the first queue linked. */
  private upstreamAccount: string | undefined;

  constructor(
    private readonly stored: MirrorRows,
    private readonly region: { readonly endpoint: string; readonly name: string },
    private readonly local: LocalQueues,
    private readonly view: QueueView,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Reads the rows again: at start, and on a site of several nodes, what the others linked or declared. */
  async reload(): Promise<void> {
    const changed = new Set<string>();
    this.reloads.add(changed);
    try {
      const rows = new Map<string, MirrorRow>();
      for (const row of await this.stored.all()) rows.set(row.name, row);
      for (const name of changed) {
        const mine = this.rows.get(name);
        if (mine) rows.set(name, mine);
        else rows.delete(name);
      }
      this.rows = rows;
      for (const row of rows.values()) this.noteAccount(row);
    } finally {
      this.reloads.delete(changed);
    }
  }

  /** The queue's state at the edge, if the edge knows it. */
  stateOf(name: string): MirrorState | undefined {
    return this.rows.get(name)?.state;
  }

  /** The region's URL of a linked queue, for requests to the region. */
  upstreamUrl(name: string): string | undefined {
    const path = this.rows.get(name)?.upstream_path;
    return path ? `${this.region.endpoint}${path}` : undefined;
  }

  /** What a queue created or declared at the edge is to be created with in the region, in the region's terms. */
  createWith(name: string): QueueAttributes | undefined {
    const row = this.rows.get(name);
    return row && this.toUpstreamAttributes(JSON.parse(row.attributes) as QueueAttributes);
  }

  /**
   * What to create a queue with that the region lost, from the edge's own copy of it: the
   * attributes that matter offline, in the region's terms. Undefined for a queue the edge lacks.
   */
  recreateWith(name: string): QueueAttributes | undefined {
    const queue = this.view.queue(name);
    if (!queue) return undefined;
    const kept: QueueAttributes = queue.fifo ? { FifoQueue: 'true' } : {};
    for (const key of MIRRORED) if (queue.attributes[key] !== undefined) kept[key] = queue.attributes[key];
    return this.toUpstreamAttributes(kept);
  }

  /** The edge's URL of a queue, for answers to clients. */
  edgeUrl(name: string, baseUrl: string): string {
    return `${baseUrl}/${this.view.accountId}/${encodeURIComponent(name)}`;
  }

  /** Whether the local store has the queue. */
  hasLocally(name: string): boolean {
    return this.view.queue(name) !== undefined;
  }

  /** Records where the region has a queue. */
  async link(name: string, upstreamUrl: string): Promise<void> {
    const parsed = parseQueueUrl(upstreamUrl);
    if (!parsed) throw new RegionUnavailable(`the region answered a queue URL the edge cannot read: ${upstreamUrl}`, 'garbled', false);
    // Every queue the edge reaches is in the region's own account: a URL of another never becomes a queue's link.
    if (this.upstreamAccount !== undefined && parsed.account !== this.upstreamAccount) {
      this.logger.warn({ queue: name, url: upstreamUrl }, 'the region answered a queue URL of another account; the edge does not link its queue to it');
      return;
    }
    const row = this.rows.get(name);
    const path = `/${parsed.account}/${encodeURIComponent(parsed.name)}`;
    if (row?.state === 'linked' && row.upstream_path === path) return;
    // A queue the edge only declared takes the region's attributes at the next request that meets it.
    await this.save({ name, state: 'linked', upstream_path: path, attributes: row?.attributes ?? '{}', mirrored_at: row?.state === 'linked' ? row.mirrored_at : 0 });
  }

  /**
   * A queue the edge creates while the region is away (pending), or is told of by the queues file
   * (declared): created in the local store, with what it is to be created with in the region.
   */
  async declare(name: string, attributes: QueueAttributes, state: 'pending' | 'declared'): Promise<void> {
    await this.applyLocally(name, attributes);
    if (this.rows.get(name)?.state === 'linked') return;
    await this.save({ name, state, upstream_path: null, attributes: JSON.stringify(attributes), mirrored_at: this.clock() });
  }

  /**
   * Applies a queue's attributes as the region has them (in the region's terms) to the local store:
   * those that matter offline. Its dead-letter queue must be mirrored first.
   */
  async apply(name: string, regionAttributes: Record<string, string>): Promise<void> {
    const kept: QueueAttributes = {};
    for (const key of MIRRORED) if (regionAttributes[key] !== undefined) kept[key] = regionAttributes[key];
    if (regionAttributes.FifoQueue === 'true') kept.FifoQueue = 'true';
    await this.applyLocally(name, this.toLocalAttributes(kept));
    const row = this.rows.get(name)!;
    await this.save({ ...row, mirrored_at: this.clock() });
  }

  /** The region deleted a queue: the edge forgets it, and deletes its own copy. */
  async deleted(name: string): Promise<void> {
    if (this.hasLocally(name)) await this.local.call('DeleteQueue', { QueueUrl: this.edgeUrl(name, '') }, { baseUrl: '' });
    await this.stored.forget(name);
    this.rows.delete(name);
    this.changedHere(name);
  }

  /** The region purged a queue: so does the edge, as best it can. */
  async purged(name: string): Promise<void> {
    if (this.hasLocally(name)) await this.local.call('PurgeQueue', { QueueUrl: this.edgeUrl(name, '') }, { baseUrl: '' }).catch(() => {});
  }

  /** Whether the queue's attributes were mirrored long enough ago to fetch them again. */
  stale(name: string): boolean {
    const row = this.rows.get(name);
    return row?.state !== 'linked' || this.clock() - row.mirrored_at > REFRESH_AFTER_MS;
  }

  /** The name of the dead-letter queue a redrive policy names, if any. */
  deadLetterOf(attributes: Record<string, string>): string | undefined {
    const arn = parseJson(attributes.RedrivePolicy)?.deadLetterTargetArn;
    return typeof arn === 'string' ? queueNameOfArn(arn) : undefined;
  }

  /** The region's ARN for an ARN of the edge (same queue name), for requests to the region. */
  toUpstreamArn(arn: string): string {
    const match = SQS_ARN.exec(arn);
    if (!match || this.upstreamAccount === undefined) return arn;
    return `arn:${match[1]}:sqs:${this.region.name}:${this.upstreamAccount}:${match[4]}`;
  }

  /** The edge's ARN for an ARN of the region, for answers to clients. */
  toLocalArn(arn: string): string {
    const name = queueNameOfArn(arn);
    return name === undefined ? arn : this.view.arnOf(name);
  }

  /** Queue attributes with the ARNs in them (QueueArn, redrive policies) in the edge's terms. */
  toLocalAttributes(attributes: Record<string, string>): Record<string, string> {
    return mapArns(attributes, (arn) => this.toLocalArn(arn));
  }

  /** Queue attributes with the ARNs in them in the region's terms. */
  toUpstreamAttributes(attributes: Record<string, string>): Record<string, string> {
    return mapArns(attributes, (arn) => this.toUpstreamArn(arn));
  }

  /** Creates the local queue, or brings its attributes in line, in one transaction of the local store. */
  private async applyLocally(name: string, attributes: QueueAttributes): Promise<void> {
    const logger = this.logger;
    const edgeUrl = this.edgeUrl(name, '');
    await this.local.transact('', function* (context) {
      const queue = yield* call(context.queues.byName(name));
      if (!queue) {
        yield* createQueue(context, { QueueName: name, Attributes: attributes });
        return;
      }
      if ((attributes.FifoQueue === 'true') !== queue.fifo) {
        logger.error({ queue: name }, 'the region has this queue as another type than the edge has; the edge keeps its own');
        return;
      }
      const { FifoQueue: _type, ...settable } = attributes;
      const changed = Object.entries(settable).some(([key, value]) => queue.attributes[key] !== value);
      if (changed) yield* setQueueAttributes(context, { QueueUrl: edgeUrl, Attributes: settable });
    });
  }

  private async save(row: MirrorRow): Promise<void> {
    await this.stored.save(row);
    this.rows.set(row.name, row);
    this.changedHere(row.name);
    this.noteAccount(row);
  }

  private changedHere(name: string): void {
    for (const changed of this.reloads) changed.add(name);
  }

  private noteAccount(row: MirrorRow): void {
    if (row.upstream_path) this.upstreamAccount ??= parseQueueUrl(row.upstream_path)?.account;
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A copy of queue attributes with QueueArn and the ARNs inside the redrive policies mapped. */
export function mapArns(attributes: Record<string, string>, map: (arn: string) => string): Record<string, string> {
  const mapped = { ...attributes };
  if (mapped.QueueArn) mapped.QueueArn = map(mapped.QueueArn);
  const redrive = parseJson(mapped.RedrivePolicy);
  if (redrive && typeof redrive.deadLetterTargetArn === 'string') {
    mapped.RedrivePolicy = JSON.stringify({ ...redrive, deadLetterTargetArn: map(redrive.deadLetterTargetArn) });
  }
  const allow = parseJson(mapped.RedriveAllowPolicy);
  if (allow && Array.isArray(allow.sourceQueueArns)) {
    mapped.RedriveAllowPolicy = JSON.stringify({ ...allow, sourceQueueArns: allow.sourceQueueArns.map((arn) => (typeof arn === 'string' ? map(arn) : arn)) });
  }
  return mapped;
}

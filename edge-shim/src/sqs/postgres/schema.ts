import type { VersionedSchema } from '../../../../functions/src/edge/index.js';

/**
 * The SQS engine's tables on PostgreSQL, one migration per version (released ones are never
 * edited). They live beside the agents' runtime stores in the same database, hence the `sqs_`
 * prefix. A message is one row, its state and its content together; times are milliseconds since
 * the epoch, as the semantics count them.
 */
export const SQS_SCHEMA: VersionedSchema = {
  name: 'SQS engine',
  versionTable: 'sqs_schema_version',
  lock: 0x53515331, // "SQS1"
  migrations: [
    `
    CREATE TABLE sqs_queues (
      id bigserial PRIMARY KEY,
      name text NOT NULL UNIQUE,
      fifo boolean NOT NULL,
      attributes text NOT NULL,
      tags text NOT NULL,
      permissions text NOT NULL DEFAULT '[]',
      created_at bigint NOT NULL,
      modified_at bigint NOT NULL,
      purged_at bigint NOT NULL DEFAULT 0,
      -- The epoch of the queue's messages: those of another epoch are purged (see sqs/database.ts).
      purged_through bigint NOT NULL DEFAULT 0,
      last_sequence bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE sqs_deleted_queues (
      name text PRIMARY KEY,
      deleted_at bigint NOT NULL
    );
    -- Queues deleted whose messages and groups are not all reclaimed yet.
    CREATE TABLE sqs_reclaim (
      queue_id bigint PRIMARY KEY
    );
    CREATE TABLE sqs_messages (
      id bigserial PRIMARY KEY,
      queue_id bigint NOT NULL,
      epoch bigint NOT NULL,
      group_id text,
      enqueued_at bigint NOT NULL,
      visible_at bigint NOT NULL,
      receive_count integer NOT NULL DEFAULT 0,
      first_received_at bigint,
      received_at bigint,
      receipt_nonce text,
      held boolean NOT NULL DEFAULT false,
      message_id text NOT NULL,
      body text NOT NULL,
      body_md5 text NOT NULL,
      attributes text,
      attributes_md5 text,
      trace_header text,
      deduplication_id text,
      sequence_number text,
      dead_letter_source text,
      sent_at bigint NOT NULL
    );
    CREATE INDEX sqs_messages_visibility ON sqs_messages (queue_id, epoch, visible_at);
    CREATE INDEX sqs_messages_group ON sqs_messages (queue_id, group_id, epoch, id);
    CREATE INDEX sqs_messages_age ON sqs_messages (queue_id, enqueued_at);
    CREATE TABLE sqs_fifo_groups (
      queue_id bigint NOT NULL,
      group_id text NOT NULL,
      epoch bigint NOT NULL,
      available_at bigint NOT NULL,
      PRIMARY KEY (queue_id, group_id)
    );
    CREATE INDEX sqs_fifo_groups_available ON sqs_fifo_groups (queue_id, epoch, available_at, group_id);
    CREATE TABLE sqs_deduplication (
      queue_id bigint NOT NULL,
      scope text NOT NULL,
      deduplication_id text NOT NULL,
      message_id text NOT NULL,
      sequence_number text,
      expires_at bigint NOT NULL,
      PRIMARY KEY (queue_id, scope, deduplication_id)
    );
    CREATE INDEX sqs_deduplication_expiry ON sqs_deduplication (expires_at);
    CREATE TABLE sqs_receive_attempts (
      queue_id bigint NOT NULL,
      attempt_id text NOT NULL,
      message_ids text NOT NULL,
      expires_at bigint NOT NULL,
      PRIMARY KEY (queue_id, attempt_id)
    );
    CREATE INDEX sqs_receive_attempts_expiry ON sqs_receive_attempts (expires_at);
    CREATE TABLE sqs_move_tasks (
      task_handle text PRIMARY KEY,
      source_arn text NOT NULL,
      destination_arn text,
      max_per_second integer,
      status text NOT NULL,
      moved integer NOT NULL DEFAULT 0,
      to_move integer NOT NULL,
      failure_reason text,
      started_at bigint NOT NULL
    );
    -- The key that signs receipt handles, drawn once per database: every node shares it.
    CREATE TABLE sqs_receipt_key (
      id integer PRIMARY KEY CHECK (id = 1),
      secret bytea NOT NULL
    );
    `,
    // A rate-limited move task's window, where every node that steps the task counts in it.
    `
    ALTER TABLE sqs_move_tasks
      ADD COLUMN rate_window_start bigint NOT NULL DEFAULT 0,
      ADD COLUMN rate_window_moved integer NOT NULL DEFAULT 0;
    `,
  ],
};

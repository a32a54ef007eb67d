/**
 * The environments of fallback agents: what an operator gives every agent (an env file), and the
 * little of the shim's own environment an agent process inherits.
 */
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export class AgentEnvironmentError extends Error {
  override readonly name = 'AgentEnvironmentError';
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Variables for every fallback agent from a file of `NAME=value` lines (the dotenv format Node reads
 * with `--env-file`): gateway URLs, the edge limits, log levels.
 */
export function readAgentEnvironment(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AgentEnvironmentError(`cannot read the agent environment file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = parseEnv(text);
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!NAME.test(name)) throw new AgentEnvironmentError(`${file}: ${JSON.stringify(name)} is not a variable name`);
    if (value !== undefined) environment[name] = value;
  }
  return environment;
}

/** Variables of the shim's own environment an agent process keeps: where things are, not secrets. */
const INHERITED = /^(PATH|HOME|TMPDIR|TEMP|TMP|TZ|LANG|LC_[A-Z]+|NODE_EXTRA_CA_CERTS|(HTTPS?|NO)_PROXY|(https?|no)_proxy|AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED)$/;

/**
 * The environment an agent process starts with: the shim's own, but only the variables above, so
 * that its credentials (HOLDFAST_CREDENTIALS, the region's AWS keys) never reach an agent. What the
 * agent needs is given to it explicitly (the shim's endpoint and a credential it accepts, the agent
 * environment).
 */
export function inheritedEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && INHERITED.test(entry[0])));
}

import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpProxyAgent, HttpsProxyAgent } from 'hpagent';
import { getProxyForUrl } from 'proxy-from-env';

/** What an AWS SDK client's request handler takes: the agents of its connections. */
export interface ClientAgents {
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
}

/**
 * The agents for an AWS SDK client of `endpoint`, through the proxy that HTTPS_PROXY (HTTP_PROXY for
 * an http endpoint) names unless NO_PROXY excludes the endpoint, as curl and the AWS CLI read them:
 * a site's way out is often only through one. The SDK's own handler reads none of them. Through a
 * proxy every connection is a CONNECT tunnel, TLS end to end to the region. The credential chain's
 * requests (STS, SSO) go through the client that asks for credentials, so they go the same way;
 * the instance and container metadata endpoints are called directly, never through a proxy.
 */
export function agentsFor(endpoint: string, options: AgentOptions): ClientAgents {
  const proxy = getProxyForUrl(endpoint);
  if (proxy === '') return { httpAgent: new HttpAgent(options), httpsAgent: new HttpsAgent(options) };
  return { httpAgent: new HttpProxyAgent({ ...options, proxy }), httpsAgent: new HttpsProxyAgent({ ...options, proxy }) };
}

import { inject } from 'vitest';

/** Endpoint, region and credentials of the AWS emulator the cloud tests share. */
export function emulator() {
  return {
    endpoint: inject('awsEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

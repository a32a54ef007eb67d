import { ConfigError, USAGE, loadConfig } from './config.js';
import { startShim } from './shim.js';

try {
  const config = loadConfig(process.argv.slice(2), process.env);
  if (config === 'help') {
    console.log(USAGE);
  } else {
    const shim = await startShim(config);
    const stop = () => {
      void shim.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
} catch (error) {
  if (error instanceof ConfigError || (error as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`holdfast edge shim: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  throw error;
}

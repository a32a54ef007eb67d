import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPTIONS, USAGE, describeOption } from '../../edge-shim/src/config.js';

// --help is made from the table of options in config.ts; the README's option tables are written by
// hand, and held here to the same flags, variables and defaults.

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const OPTION_TABLE_HEADER = '| Option | Environment | Default | Meaning |';

/** A README cell as --help would write it: no code marks, no escaped pipes. */
function plainText(cell: string): string {
  return cell.trim().replaceAll('`', '').replaceAll('\\|', '|');
}

/** The rows of the README's option tables, each table from its header to the first line that is not a row. */
function readmeOptionRows(): { flag: string; environment: string; default: string }[] {
  const rows: { flag: string; environment: string; default: string }[] = [];
  let inTable = false;
  for (const line of README.split('\n')) {
    if (line === OPTION_TABLE_HEADER) inTable = true;
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable && !line.startsWith('| ---')) {
      const [flag = '', environment = '', shownDefault = ''] = line.slice(1, -1).split(/(?<!\\)\|/).map(plainText);
      rows.push({ flag, environment, default: shownDefault });
    }
  }
  return rows;
}

const options = Object.values(OPTIONS).map(describeOption);

describe('the README', () => {
  const rows = readmeOptionRows();

  it('lists every option, in the order of --help, and no other', () => {
    expect(rows.map((row) => row.flag)).toEqual(options.map((option) => option.flag));
  });

  it.each(options.map((option) => [option.flag, option]))('gives %s its variable and default', (flag, option) => {
    expect(rows.find((row) => row.flag === flag)).toEqual(option);
  });
});

describe('--help', () => {
  const text = USAGE.replace(/\s+/g, ' ');

  it.each(options.map((option) => [option.flag, option]))('gives %s its variable and default', (flag, option) => {
    expect(text).toContain(` ${flag} `);
    expect(text).toContain(`(${option.environment}, default ${option.default})`);
  });
});

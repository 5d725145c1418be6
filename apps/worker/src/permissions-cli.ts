import { parseArgs } from 'node:util';
import { describeThrown } from '@warren/core';
import {
  type PermissionsPlan,
  parsePermissionsDeclaration,
  planPermissions,
  toDefinitions,
  toRabbitmqctlScript,
} from '@warren/security';
import { readJsonFile } from './config.ts';

const FORMATS = ['rabbitmqctl', 'definitions', 'worker-config'] as const;
type Format = (typeof FORMATS)[number];

const USAGE = `Usage: warren-permissions <declaration.json> [--format rabbitmqctl|definitions|worker-config]
                          [--without-users]

Prints the least-privilege RabbitMQ permissions of the accounts a declaration names
(docs/permissions.md):
  rabbitmqctl    a sh script of rabbitmqctl commands (the default); it can be run again, and
                 reads each new account's password from WARREN_PASSWORD_<ACCOUNT>
  definitions    a definitions file for rabbitmqctl import_definitions; --without-users leaves
                 the accounts out, as re-importing them would take their passwords away
  worker-config  each worker account's security.relays and handler clearances
Warnings go to stderr. Exit codes: 0 printed, 2 bad usage or declaration.`;

/** Exit codes: 0 printed, 2 bad usage, unreadable file or bad declaration. */
async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`warren-permissions: ${describeThrown(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  let plan: PermissionsPlan;
  try {
    plan = planPermissions(
      parsePermissionsDeclaration(await readJsonFile(parsed.file, 'declaration file')),
    );
  } catch (error) {
    process.stderr.write(`warren-permissions: ${describeThrown(error)}\n`);
    return 2;
  }
  for (const warning of plan.warnings) {
    process.stderr.write(`warren-permissions: warning: ${warning}\n`);
  }
  process.stdout.write(render(plan, parsed.format, parsed.withoutUsers));
  return 0;
}

function parseCommandLine(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: 'string', short: 'f', default: 'rabbitmqctl' },
      'without-users': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help)
    return { help: true, file: '', format: 'rabbitmqctl' as Format, withoutUsers: false };
  const format = values.format as Format;
  if (!FORMATS.includes(format)) {
    throw new Error(
      `--format: expected one of ${FORMATS.join(', ')}, found ${JSON.stringify(values.format)}`,
    );
  }
  if (positionals.length !== 1) {
    throw new Error(`expected one declaration file, found ${positionals.length}`);
  }
  if (values['without-users'] && format !== 'definitions') {
    throw new Error('--without-users: only the definitions format lists accounts');
  }
  return { help: false, file: positionals[0]!, format, withoutUsers: values['without-users'] };
}

function render(plan: PermissionsPlan, format: Format, withoutUsers: boolean): string {
  if (format === 'rabbitmqctl') return toRabbitmqctlScript(plan);
  const document =
    format === 'definitions'
      ? toDefinitions(plan, { users: !withoutUsers })
      : { vhost: plan.vhost, workers: plan.workers };
  return `${JSON.stringify(document, null, 2)}\n`;
}

process.exitCode = await main(process.argv.slice(2));

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionScript } from '../src/commands/completion.ts';
import { runCli } from './harness.ts';

/** The scripts `keyledger completion` prints, run in the real shells (zsh and fish only where installed). */
const has = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;

let dir: string;
const scripts: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-completion-'));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await runCli(['completion', shell]);
    expect(r.code, r.stderr).toBe(0);
    scripts[shell] = r.stdout;
    writeFileSync(join(dir, `keyledger.${shell}`), r.stdout);
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What bash offers for the words typed so far (the last one being completed). */
function bashComplete(...words: string[]): string[] {
  const script = `source ${join(dir, 'keyledger.bash')}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_keyledger; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('keyledger completion', () => {
  it('bash: commands, subcommands after global words, flags, and the values of flags with choices', () => {
    expect(bashComplete('keyledger', '')).toEqual(
      expect.arrayContaining([
        'auth',
        'keys',
        'sessions',
        'users',
        'audit',
        'db',
        'projections',
        'completion',
        'start',
      ]),
    );
    expect(bashComplete('keyledger', 'au')).toEqual(['auth', 'audit']);
    expect(bashComplete('keyledger', 'audit', '')).toEqual(
      expect.arrayContaining(['query', 'tail', 'export', 'verify', 'checkpoint']),
    );
    expect(bashComplete('keyledger', 'audit', 'tail', '--f')).toEqual(['--follow']);
    expect(bashComplete('keyledger', 'audit', 'export', '--format', '')).toEqual(['jsonl', 'csv']);
    expect(bashComplete('keyledger', 'audit', 'query', '--order', '')).toEqual(['asc', 'desc']);
    // A flag's value is not taken for a command: `--profile keys` still completes `users` subcommands.
    expect(bashComplete('keyledger', 'users', '--profile', 'keys', 'cr')).toEqual(['create']);
    expect(bashComplete('keyledger', 'completion', '')).toEqual(expect.arrayContaining(['bash', 'zsh', 'fish']));
    expect(bashComplete('keyledger', 'users', 'create', '--')).toEqual(
      expect.arrayContaining(['--email', '--name', '--admin', '--password-stdin', '--json']),
    );
  });

  it.skipIf(!has('fish'))('fish: the same answers through `complete -C`', () => {
    const complete = (line: string) => {
      const r = spawnSync('fish', ['-c', `source ${join(dir, 'keyledger.fish')}; complete -C '${line}'`], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').map((l) => l.split('\t')[0]);
    };
    expect(complete('keyledger audit ')).toEqual(expect.arrayContaining(['query', 'tail', 'export', 'verify']));
    expect(complete('keyledger audit export --format ')).toEqual(expect.arrayContaining(['jsonl', 'csv']));
    expect(complete('keyledger keys ')).not.toContain('tail');
  });

  it.skipIf(!has('zsh'))('zsh: the script parses', () => {
    const r = spawnSync('zsh', ['-n', join(dir, 'keyledger.zsh')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(scripts.zsh).toMatch(/^#compdef keyledger\n/);
  });

  it('follows the command tree, quotes descriptions safely, and refuses an unknown shell (exit 2)', async () => {
    const program = new Command('tool');
    program
      .command('say')
      .description('it\'s "quoted" and $(dangerous)')
      .addOption(new Option('--mode <m>', 'how').choices(['loud', 'soft']));
    const bash = completionScript(program, 'bash');
    expect(bash).toContain(`"say|--mode") COMPREPLY=($(compgen -W 'loud soft' -- "$cur")); return ;;`);
    const fish = completionScript(program, 'fish');
    expect(fish).toContain(`-a 'say' -d 'it'\\''s "quoted" and $(dangerous)'`);
    if (has('fish')) {
      const file = join(dir, 'tool.fish');
      writeFileSync(file, fish);
      const r = spawnSync('fish', ['-c', `source ${file}; complete -C 'tool '`], { encoding: 'utf8' });
      expect(r.stdout).toBe('say\tit\'s "quoted" and $(dangerous)\n');
    }
    expect((await runCli(['completion', 'powershell'])).code).toBe(2);
  });
});

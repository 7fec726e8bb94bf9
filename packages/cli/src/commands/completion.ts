import { Argument, type Command, type Option } from 'commander';

/**
 * `keyledger completion bash|zsh|fish`: a completion script generated from the command tree itself, so it can never
 * list a command or flag the binary does not have. Each script finds the command path typed so far (words that are
 * not flags and name a subcommand), then offers that command's subcommands and flags, and the values of a flag
 * with fixed choices (files for -o and --checkpoint).
 */
interface Flag {
  readonly long: string | undefined;
  readonly short: string | undefined;
  readonly description: string;
  readonly takesValue: boolean;
  readonly choices: readonly string[];
  readonly file: boolean;
}

interface Node {
  /** Space-separated command path, '' for the program itself. */
  readonly path: string;
  readonly description: string;
  readonly children: readonly { name: string; description: string }[];
  readonly flags: readonly Flag[];
  /** Fixed values of its first positional argument, e.g. the shells of `completion`. */
  readonly argChoices: readonly string[];
}

const FILE_FLAGS = new Set(['--output', '--checkpoint']);
const HELP: Flag = {
  long: '--help',
  short: '-h',
  description: 'display help',
  takesValue: false,
  choices: [],
  file: false,
};

function walk(cmd: Command, path: string, out: Node[]): void {
  const flags: Flag[] = (cmd.options as readonly Option[]).map((o) => ({
    long: o.long,
    short: o.short,
    description: o.description,
    takesValue: o.required || o.optional,
    choices: o.argChoices ?? [],
    file: o.long !== undefined && FILE_FLAGS.has(o.long),
  }));
  const children = cmd.commands.map((c) => ({ name: c.name(), description: c.description() }));
  out.push({
    path,
    description: cmd.description(),
    children,
    flags: [...flags, HELP],
    argChoices: cmd.registeredArguments[0]?.argChoices ?? [],
  });
  for (const c of cmd.commands) walk(c, path ? `${path} ${c.name()}` : c.name(), out);
}

export function commandTree(program: Command): Node[] {
  const out: Node[] = [];
  walk(program, '', out);
  return out;
}

const names = (f: Flag) => [f.long, f.short].filter((n): n is string => n !== undefined);
const firstLine = (s: string) => s.split('\n')[0] ?? '';
/** In single quotes for sh/bash/zsh/fish: ' becomes '\'' (fish also reads \' inside single quotes, so it is rewritten). */
const sq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** `"path|--flag"` patterns of every flag that takes a value, grouped by what completes its value. */
function groupByAction(nodes: readonly Node[], action: (f: Flag) => string): [string[], string][] {
  const groups = new Map<string, string[]>();
  for (const n of nodes) {
    for (const f of n.flags.filter((x) => x.takesValue)) {
      const key = action(f);
      const patterns = groups.get(key) ?? [];
      patterns.push(...names(f).map((name) => `"${n.path}|${name}"`));
      groups.set(key, patterns);
    }
  }
  return [...groups].map(([key, patterns]) => [patterns, key]);
}

function bash(nodes: readonly Node[], bin: string): string {
  const paths = nodes.filter((n) => n.path !== '').map((n) => `"${n.path}"`);
  const valueCases = groupByAction(nodes, (f) =>
    f.file
      ? 'COMPREPLY=($(compgen -f -- "$cur"))'
      : f.choices.length > 0
        ? `COMPREPLY=($(compgen -W ${sq(f.choices.join(' '))} -- "$cur"))`
        : 'COMPREPLY=()',
  ).map(([patterns, reply]) => `    ${patterns.join('|')}) ${reply}; return ;;`);
  const wordCases = nodes.map((n) => {
    const words = [...n.children.map((c) => c.name), ...n.argChoices, ...n.flags.flatMap(names)];
    return `    "${n.path}") words=${sq(words.join(' '))} ;;`;
  });
  return `# bash completion for ${bin}: add to ~/.bashrc
#   source <(${bin} completion bash)
_${bin}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmdpath="" word words="" i
  [[ $COMP_CWORD -gt 0 ]] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case "\${cmdpath:+$cmdpath }$word" in
      ${paths.join('|')}) cmdpath="\${cmdpath:+$cmdpath }$word" ;;
    esac
  done
  case "$cmdpath|$prev" in
${valueCases.join('\n')}
  esac
  case "$cmdpath" in
${wordCases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _${bin} ${bin}
`;
}

function zsh(nodes: readonly Node[], bin: string): string {
  const paths = nodes.filter((n) => n.path !== '').map((n) => `"${n.path}"`);
  const valueCases = groupByAction(nodes, (f) =>
    f.file ? '_files' : f.choices.length > 0 ? `compadd -- ${f.choices.join(' ')}` : ':',
  ).map(([patterns, action]) => `    (${patterns.join('|')}) ${action}; return ;;`);
  const entry = (name: string, description: string) => sq(`${name.replaceAll(':', '\\:')}:${firstLine(description)}`);
  const wordCases = nodes.map((n) => {
    const cmds = [...n.children.map((c) => entry(c.name, c.description)), ...n.argChoices.map((c) => entry(c, ''))];
    const opts = n.flags.flatMap((f) => names(f).map((name) => entry(name, f.description)));
    return `    ("${n.path}") cmds=(${cmds.join(' ')}); opts=(${opts.join(' ')}) ;;`;
  });
  return `#compdef ${bin}
# zsh completion for ${bin}: save as _${bin} in a directory of $fpath, or add to ~/.zshrc
#   source <(${bin} completion zsh)
_${bin}() {
  local cmdpath="" word prev="\${words[CURRENT-1]}" i
  local -a cmds opts
  for ((i = 2; i < CURRENT; i++)); do
    word="\${words[i]}"
    [[ "$word" == -* ]] && continue
    case "\${cmdpath:+$cmdpath }$word" in
      (${paths.join('|')}) cmdpath="\${cmdpath:+$cmdpath }$word" ;;
    esac
  done
  case "$cmdpath|$prev" in
${valueCases.join('\n')}
  esac
  case "$cmdpath" in
${wordCases.join('\n')}
  esac
  if [[ "\${words[CURRENT]}" == -* ]]; then
    _describe -t options 'option' opts
  else
    _describe -t commands 'command' cmds || _describe -t options 'option' opts
  fi
}
if [[ "\${funcstack[1]}" == "_${bin}" ]]; then
  _${bin} "$@"
else
  compdef _${bin} ${bin}
fi
`;
}

function fish(nodes: readonly Node[], bin: string): string {
  const paths = nodes.filter((n) => n.path !== '').map((n) => sq(n.path));
  const lines: string[] = [];
  for (const n of nodes) {
    const at = `-n "__${bin}_at '${n.path}'"`;
    for (const c of n.children)
      lines.push(`complete -c ${bin} ${at} -a ${sq(c.name)} -d ${sq(firstLine(c.description))}`);
    for (const c of n.argChoices) lines.push(`complete -c ${bin} ${at} -a ${sq(c)}`);
    for (const f of n.flags) {
      const parts = [`complete -c ${bin} ${at}`];
      if (f.long) parts.push(`-l ${f.long.slice(2)}`);
      if (f.short) parts.push(`-s ${f.short.slice(1)}`);
      if (f.takesValue) parts.push(f.file ? '-r -F' : '-x');
      if (f.choices.length > 0) parts.push(`-a ${sq(f.choices.join(' '))}`);
      parts.push(`-d ${sq(firstLine(f.description))}`);
      lines.push(parts.join(' '));
    }
  }
  return `# fish completion for ${bin}: save as ~/.config/fish/completions/${bin}.fish, or run
#   ${bin} completion fish | source
function __${bin}_path
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l cmdpath ''
    for token in $tokens
        string match -q -- '-*' $token; and continue
        set -l next (string trim -- "$cmdpath $token")
        switch $next
            case ${paths.join(' ')}
                set cmdpath $next
        end
    end
    echo $cmdpath
end
function __${bin}_at
    set -l here (__${bin}_path)
    test "$here" = "$argv[1]"
end
complete -c ${bin} -f
${lines.join('\n')}
`;
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export function completionScript(program: Command, shell: Shell): string {
  const nodes = commandTree(program);
  const bin = program.name();
  return shell === 'bash' ? bash(nodes, bin) : shell === 'zsh' ? zsh(nodes, bin) : fish(nodes, bin);
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}

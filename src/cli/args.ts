// Command-line parsing: turns argv into one typed command or throws a UsageError whose
// message is the single line the user sees.
import { UsageError } from '../errors.js';
import { TIME_MODES, type TimeMode } from '../reproducibility/time.js';

export interface RunArgs {
  command: 'run';
  argv: string[];
  build?: string;
  step?: string;
  parents: string[];
  noParents: boolean;
  replay?: string;
  net?: boolean;
  /** --dns-map values as given (NAME=IP[,NAME=IP...]). */
  dnsMap: string[];
  upstreamCa: string[];
  allowPush?: boolean;
  tmp?: string;
  time?: TimeMode;
  linger?: number;
  aslr?: boolean;
  quiet: boolean;
  dryRun: boolean;
  fastPath?: boolean;
  /** --skippable / --not-skippable names, in order given (undefined: none given). */
  skippable?: string[];
  notSkippable?: string[];
}

export type InspectKind = 'files' | 'procs' | 'output' | 'events' | 'net' | 'rebuild';

export interface InspectArgs {
  command: 'inspect';
  kind: InspectKind;
  attempt: string;
  pid?: number;
  who: boolean;
  byPid?: number;
  tree: boolean;
  since?: number;
  until?: number;
  path?: string;
  reads?: boolean;
  format: 'text' | 'json';
}

export interface CheckArgs {
  command: 'check';
  attempt: string;
  repair: boolean;
  /** Where the killed run's temporary directory is (its --tmp), for --repair. */
  tmp?: string;
}

export type CliCommand =
  | RunArgs
  | InspectArgs
  | CheckArgs
  | { command: 'ui'; attempt: string }
  | { command: 'test'; names: string[]; list: boolean; keep: boolean }
  | { command: 'help'; topic?: string }
  | { command: 'version' };

const COMMANDS = ['run', 'inspect', 'check', 'ui', 'test'];

/** Walks options of one command; values may be given as `--opt value` or `--opt=value`. */
class OptionReader {
  private i = 0;
  constructor(
    private readonly command: string,
    private readonly args: string[],
  ) {}

  /** Next token, or undefined at the end. Stops before `--`. */
  next(): string | undefined {
    return this.i < this.args.length ? this.args[this.i++] : undefined;
  }

  rest(): string[] {
    const r = this.args.slice(this.i);
    this.i = this.args.length;
    return r;
  }

  value(option: string, inline: string | undefined): string {
    if (inline !== undefined) {
      if (inline === '') throw new UsageError(`uwrx ${this.command}: ${option} needs a value`);
      return inline;
    }
    const v = this.next();
    if (v === undefined || (v.startsWith('-') && v !== '-')) {
      throw new UsageError(`uwrx ${this.command}: ${option} needs a value`);
    }
    return v;
  }

  unknown(option: string): never {
    throw new UsageError(`uwrx ${this.command}: unknown option ${option} (see uwrx ${this.command} --help)`);
  }
}

function splitInline(token: string): [string, string | undefined] {
  const eq = token.indexOf('=');
  return token.startsWith('--') && eq > 0 ? [token.slice(0, eq), token.slice(eq + 1)] : [token, undefined];
}

function noInline(command: string, option: string, inline: string | undefined): void {
  if (inline !== undefined) throw new UsageError(`uwrx ${command}: ${option} takes no value`);
}

function parsePid(command: string, option: string, text: string): number {
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new UsageError(`uwrx ${command}: ${option} expects a logical pid (a positive integer), got "${text}"`);
  }
  return Number(text);
}

export function parseArgs(args: string[]): CliCommand {
  const first = args[0];
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    return { command: 'help', topic: first === 'help' ? args[1] : undefined };
  }
  if (first === '-V' || first === '--version') return { command: 'version' };
  if (!COMMANDS.includes(first)) {
    throw new UsageError(
      first.startsWith('-')
        ? `uwrx: unknown option ${first} (see uwrx --help)`
        : `uwrx: unknown command "${first}" (commands: ${COMMANDS.join(', ')})`,
    );
  }
  const rest = args.slice(1);
  if (rest.includes('-h') || rest.includes('--help')) {
    const dd = rest.indexOf('--');
    const h = Math.max(rest.indexOf('-h'), rest.indexOf('--help'));
    if (dd < 0 || h < dd) return { command: 'help', topic: first };
  }
  switch (first) {
    case 'run':
      return parseRun(rest);
    case 'inspect':
      return parseInspect(rest);
    case 'check':
      return parseCheck(rest);
    case 'ui':
      return { command: first, attempt: parseSingleAttempt(first, rest) };
    default:
      return parseTest(rest);
  }
}

function parseRun(args: string[]): RunArgs {
  const r = new OptionReader('run', args);
  const out: RunArgs = { command: 'run', argv: [], parents: [], noParents: false, dnsMap: [], upstreamCa: [], quiet: false, dryRun: false };
  let sawSeparator = false;
  for (let token = r.next(); token !== undefined; token = r.next()) {
    if (token === '--') {
      sawSeparator = true;
      out.argv = r.rest();
      break;
    }
    const [option, inline] = splitInline(token);
    switch (option) {
      case '--build':
        out.build = r.value(option, inline);
        break;
      case '--step':
        out.step = r.value(option, inline);
        break;
      case '--parent':
        out.parents.push(r.value(option, inline));
        break;
      case '--no-parent':
        noInline('run', option, inline);
        out.noParents = true;
        break;
      case '--replay':
        out.replay = r.value(option, inline);
        break;
      case '--tmp':
        out.tmp = r.value(option, inline);
        break;
      case '--time': {
        const mode = r.value(option, inline);
        if (!(TIME_MODES as readonly string[]).includes(mode)) {
          throw new UsageError(`uwrx run: --time must be ${TIME_MODES.join(', ')}, got "${mode}"`);
        }
        out.time = mode as TimeMode;
        break;
      }
      case '--linger': {
        const text = r.value(option, inline);
        if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) {
          throw new UsageError(`uwrx run: --linger expects seconds (a number >= 0), got "${text}"`);
        }
        out.linger = Number(text);
        break;
      }
      case '--aslr':
        noInline('run', option, inline);
        out.aslr = true;
        break;
      case '--net':
      case '--no-net':
        noInline('run', option, inline);
        out.net = option === '--net';
        break;
      case '--dns-map':
        out.dnsMap.push(r.value(option, inline));
        break;
      case '--upstream-ca':
        out.upstreamCa.push(r.value(option, inline));
        break;
      case '--allow-push':
        noInline('run', option, inline);
        out.allowPush = true;
        break;
      case '--dry-run':
        noInline('run', option, inline);
        out.dryRun = true;
        break;
      case '--fast-path':
      case '--no-fast-path': {
        noInline('run', option, inline);
        const on = option === '--fast-path';
        if (out.fastPath === !on) throw new UsageError('uwrx run: --fast-path cannot be used with --no-fast-path');
        out.fastPath = on;
        break;
      }
      case '--skippable':
        (out.skippable ??= []).push(r.value(option, inline));
        break;
      case '--not-skippable':
        (out.notSkippable ??= []).push(r.value(option, inline));
        break;
      case '-q':
      case '--quiet':
        noInline('run', option, inline);
        out.quiet = true;
        break;
      default:
        if (option.startsWith('-')) r.unknown(option);
        throw new UsageError(`uwrx run: missing "--" before the command (uwrx run [options] -- ${[token, ...r.rest()].join(' ')})`);
    }
  }
  if (out.step !== undefined && out.replay !== undefined) {
    throw new UsageError('uwrx run: --step cannot be used with --replay (a replay is a new attempt of the replayed step)');
  }
  if (out.noParents && out.parents.length > 0) throw new UsageError('uwrx run: --parent cannot be used with --no-parent');
  if (out.argv.length === 0 && out.replay === undefined) {
    throw new UsageError(
      sawSeparator ? 'uwrx run: no command after "--"' : 'uwrx run: missing "--" and a command (uwrx run [options] -- <command>)',
    );
  }
  if (out.step !== undefined) validateStepName(out.step);
  for (const m of out.dnsMap) {
    for (const item of m.split(',')) {
      if (!/^[A-Za-z0-9_.-]+=([0-9.]+|[0-9a-fA-F:]+)$/.test(item.trim())) {
        throw new UsageError(`uwrx run: --dns-map expects NAME=IP[,NAME=IP...], got "${item}"`);
      }
    }
  }
  return out;
}

export function validateStepName(step: string): void {
  if (step === '' || step === '.' || step === '..' || step.includes('/') || step.includes('\0') || step.startsWith('.')) {
    throw new UsageError(`uwrx run: --step "${step}" is not a valid step name (no "/", not starting with ".")`);
  }
}

function parseInspect(args: string[]): InspectArgs {
  const r = new OptionReader('inspect', args);
  const positional: string[] = [];
  const out: Omit<InspectArgs, 'kind' | 'attempt'> = { command: 'inspect', who: false, tree: false, format: 'text' };
  for (let token = r.next(); token !== undefined; token = r.next()) {
    if (token === '--') {
      positional.push(...r.rest());
      break;
    }
    const [option, inline] = splitInline(token);
    if (!option.startsWith('-') || option === '-') {
      positional.push(token);
      continue;
    }
    switch (option) {
      case '--who':
        noInline('inspect', option, inline);
        out.who = true;
        break;
      case '--reads':
        noInline('inspect', option, inline);
        out.reads = true;
        break;
      case '--by-pid':
        out.byPid = parsePid('inspect', option, r.value(option, inline));
        break;
      case '--tree':
        noInline('inspect', option, inline);
        out.tree = true;
        break;
      case '--since':
      case '--until': {
        const text = r.value(option, inline);
        if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new UsageError(`uwrx inspect: ${option} expects seconds since the run's start (e.g. 1.5), got "${text}"`);
        out[option === '--since' ? 'since' : 'until'] = Number(text);
        break;
      }
      case '--path': {
        const prefix = r.value(option, inline);
        if (!prefix.startsWith('/')) throw new UsageError(`uwrx inspect: --path expects an absolute path, got "${prefix}"`);
        out.path = prefix;
        break;
      }
      case '--format': {
        const f = r.value(option, inline);
        if (f !== 'text' && f !== 'json') throw new UsageError(`uwrx inspect: --format must be text or json, got "${f}"`);
        out.format = f;
        break;
      }
      default:
        r.unknown(option);
    }
  }
  const [kind, attempt, ...extra] = positional;
  const kinds = ['files', 'procs', 'output', 'events', 'net', 'rebuild'];
  if (kind === undefined) throw new UsageError('uwrx inspect: missing what to inspect (files, procs, output, events, net or rebuild)');
  if (!kinds.includes(kind)) throw new UsageError(`uwrx inspect: unknown view "${kind}" (files, procs, output, events, net or rebuild)`);
  if (attempt === undefined) throw new UsageError(`uwrx inspect ${kind}: missing the attempt directory (such as build/0/0)`);
  const result: InspectArgs = { ...out, kind: kind as InspectKind, attempt };
  if (kind === 'output' && extra.length > 0) result.pid = parsePid('inspect', 'output', extra.shift()!);
  if (extra.length > 0) throw new UsageError(`uwrx inspect ${kind}: unexpected argument "${extra[0]}"`);
  if ((out.who || out.byPid !== undefined || out.reads) && kind !== 'files') {
    throw new UsageError(`uwrx inspect ${kind}: --who, --by-pid and --reads apply to "files" only`);
  }
  if (out.tree && kind !== 'procs') throw new UsageError(`uwrx inspect ${kind}: --tree applies to "procs" only`);
  if ((out.since !== undefined || out.until !== undefined || out.path !== undefined) && kind !== 'files' && kind !== 'events') {
    throw new UsageError(`uwrx inspect ${kind}: --since, --until and --path apply to "files" and "events" only`);
  }
  if (out.since !== undefined && out.until !== undefined && out.since > out.until) {
    throw new UsageError(`uwrx inspect ${kind}: --since ${out.since} is after --until ${out.until}`);
  }
  if (out.reads && out.who) throw new UsageError('uwrx inspect files: --reads and --who cannot be combined (--reads lists every access with its process)');
  return result;
}

function parseCheck(args: string[]): CheckArgs {
  const r = new OptionReader('check', args);
  const positional: string[] = [];
  let repair = false;
  let tmp: string | undefined;
  for (let token = r.next(); token !== undefined; token = r.next()) {
    if (token === '--') {
      positional.push(...r.rest());
      break;
    }
    const [option, inline] = splitInline(token);
    if (option === '--repair') {
      noInline('check', option, inline);
      repair = true;
    } else if (option === '--tmp') tmp = r.value(option, inline);
    else if (option.startsWith('-') && option !== '-') r.unknown(option);
    else positional.push(token);
  }
  if (positional.length === 0) throw new UsageError('uwrx check: missing the attempt directory (such as build/0/0)');
  if (positional.length > 1) throw new UsageError(`uwrx check: unexpected argument "${positional[1]}"`);
  if (tmp !== undefined && !repair) throw new UsageError('uwrx check: --tmp applies to --repair only');
  return { command: 'check', attempt: positional[0]!, repair, ...(tmp !== undefined ? { tmp } : {}) };
}

function parseSingleAttempt(command: string, args: string[]): string {
  const positional = args.filter((a) => a !== '--');
  const option = positional.find((a) => a.startsWith('-') && a !== '-');
  if (option !== undefined) throw new UsageError(`uwrx ${command}: unknown option ${option} (see uwrx ${command} --help)`);
  if (positional.length === 0) throw new UsageError(`uwrx ${command}: missing the attempt directory (such as build/0/0)`);
  if (positional.length > 1) throw new UsageError(`uwrx ${command}: unexpected argument "${positional[1]}"`);
  return positional[0]!;
}

function parseTest(args: string[]): CliCommand {
  const r = new OptionReader('test', args);
  const names: string[] = [];
  let list = false;
  let keep = false;
  for (let token = r.next(); token !== undefined; token = r.next()) {
    const [option, inline] = splitInline(token);
    if (option === '--list') {
      noInline('test', option, inline);
      list = true;
    } else if (option === '--keep') {
      noInline('test', option, inline);
      keep = true;
    } else if (option.startsWith('-')) r.unknown(option);
    else names.push(token);
  }
  if (!list && names.length === 0) throw new UsageError('uwrx test: name a scenario, "all", or --list');
  return { command: 'test', names, list, keep };
}

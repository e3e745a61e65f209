import { parseDocument } from 'yaml';
import { AgentError, isAgentError } from '../errors.js';
import { AddressSet } from './address-set.js';

/**
 * HOME_NET from suricata.yaml, resolved with Suricata's address grammar (suricata-reference
 * §5.1): `[a, b]` lists (nested, spaces allowed), top-level comma lists, `!` exceptions (a
 * list of exceptions only, or a lone `!X`, means everything except them), `$VAR` references
 * to other `vars.address-groups` entries (cycles rejected), `any`, bare addresses, CIDRs and
 * `a-b` ranges, IPv4 and IPv6 mixed.
 */

export interface HomeNet {
  /** The resolved set, or null when suricata.yaml defines no HOME_NET. */
  readonly set: AddressSet | null;
  /** HOME_NET as written in suricata.yaml, or null. */
  readonly expression: string | null;
  readonly warnings: string[];
}

export type AddressGroups = Readonly<Record<string, unknown>>;

/**
 * Reads `vars.address-groups.HOME_NET` from the text of a suricata.yaml and resolves it.
 * A missing HOME_NET gives `set: null` with a warning. A YAML error, a malformed expression,
 * an unknown `$VAR` or a reference cycle throws AgentError ERR_HOME_NET_INVALID naming the
 * expression (or the variables of the cycle) and the problem.
 */
export function resolveHomeNet(yamlText: string): HomeNet {
  const warnings: string[] = [];
  const doc = parseDocument(yamlText, { logLevel: 'silent', uniqueKeys: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new AgentError('ERR_HOME_NET_INVALID', `suricata.yaml is not valid YAML, so HOME_NET cannot be read: ${oneLine(first.message)}`, {
      problem: 'yaml',
    });
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    // e.g. an alias bomb: the document parses but cannot be expanded.
    throw new AgentError('ERR_HOME_NET_INVALID', `suricata.yaml cannot be read as data, so HOME_NET cannot be read: ${oneLine(err instanceof Error ? err.message : String(err))}`, {
      problem: 'yaml',
    });
  }
  const vars = field(root, 'vars');
  const groups = field(vars, 'address-groups');
  if (groups === undefined || groups === null || typeof groups !== 'object' || Array.isArray(groups)) {
    warnings.push('suricata.yaml has no vars.address-groups section, so it defines no HOME_NET.');
    return { set: null, expression: null, warnings };
  }
  const g = groups as AddressGroups;
  if (g['HOME_NET'] === undefined || g['HOME_NET'] === null) {
    warnings.push('suricata.yaml defines no vars.address-groups.HOME_NET.');
    return { set: null, expression: null, warnings };
  }
  const expression = groupText('HOME_NET', g['HOME_NET'], []);
  const set = resolveAddressGroup('HOME_NET', g, warnings);
  if (set.isEmpty()) warnings.push(`HOME_NET ${JSON.stringify(expression)} leaves no addresses: its exceptions remove everything.`);
  return { set, expression, warnings };
}

/** Resolves one named address group against the others (for `$VAR` references). Throws ERR_HOME_NET_INVALID. */
export function resolveAddressGroup(name: string, groups: AddressGroups, warnings: string[] = []): AddressSet {
  return new Resolver(groups, warnings).group(name, []);
}

/** Resolves one address expression; `$VAR` references are looked up in `groups`. Throws ERR_HOME_NET_INVALID. */
export function parseAddressExpression(expression: string, groups: AddressGroups = {}, warnings: string[] = []): AddressSet {
  return new Resolver(groups, warnings).expression(expression, []);
}

class Resolver {
  private readonly done = new Map<string, AddressSet>();

  constructor(
    private readonly groups: AddressGroups,
    private readonly warnings: string[],
  ) {}

  group(name: string, stack: readonly string[]): AddressSet {
    const cached = this.done.get(name);
    if (cached !== undefined) return cached;
    if (stack.includes(name)) {
      const cycle = [...stack.slice(stack.indexOf(name)), name].map((n) => `$${n}`).join(' -> ');
      throw new AgentError('ERR_HOME_NET_INVALID', `Address groups refer to each other in a loop: ${cycle}.`, {
        problem: 'cycle',
        variables: [...stack.slice(stack.indexOf(name))],
      });
    }
    if (!Object.prototype.hasOwnProperty.call(this.groups, name) || this.groups[name] === undefined || this.groups[name] === null) {
      const from = stack.length > 0 ? `$${stack[stack.length - 1]!}` : 'the expression';
      throw new AgentError('ERR_HOME_NET_INVALID', `${from} refers to $${name}, which vars.address-groups does not define.`, {
        problem: 'undefined-variable',
        variable: name,
      });
    }
    const text = groupText(name, this.groups[name], this.warnings);
    const set = this.expression(text, [...stack, name], name);
    this.done.set(name, set);
    return set;
  }

  expression(text: string, stack: readonly string[], name?: string): AddressSet {
    const what = name === undefined ? `Address expression ${JSON.stringify(text)}` : `$${name} ${JSON.stringify(text)}`;
    return new ExpressionParser(text, what, (v) => this.group(v, stack)).parse();
  }
}

/** The text of a group; a YAML sequence (an unquoted `[a, b]`) is accepted with a warning. */
function groupText(name: string, value: unknown, warnings: string[]): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    const text = `[${value.join(',')}]`;
    warnings.push(`$${name} is an unquoted YAML list; read as ${JSON.stringify(text)}. Quote it in suricata.yaml, as Suricata expects a string.`);
    return text;
  }
  throw new AgentError('ERR_HOME_NET_INVALID', `$${name} in vars.address-groups is not a string (${JSON.stringify(value)}).`, {
    problem: 'not-a-string',
    variable: name,
  });
}

interface Item {
  readonly negated: boolean;
  readonly set: AddressSet;
}

/** Recursive descent over one expression: seq := item (',' item)*; item := '!'? ('[' seq ']' | '$' NAME | term). */
class ExpressionParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly what: string,
    private readonly lookup: (name: string) => AddressSet,
  ) {}

  parse(): AddressSet {
    this.skipSpace();
    if (this.pos >= this.text.length) throw this.fail('it is empty');
    const set = this.sequence(false);
    this.skipSpace();
    if (this.pos < this.text.length) throw this.fail(`unexpected ${JSON.stringify(this.text[this.pos])} at position ${this.pos + 1}`);
    return set;
  }

  private sequence(inBrackets: boolean): AddressSet {
    const items: Item[] = [this.item()];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== ',') break;
      this.pos++;
      items.push(this.item());
    }
    if (inBrackets && this.text[this.pos] !== ']') {
      throw this.fail(this.pos >= this.text.length ? 'a "[" is never closed (missing "]")' : `unexpected ${JSON.stringify(this.text[this.pos])} at position ${this.pos + 1}`);
    }
    let plus = AddressSet.empty();
    let minus = AddressSet.empty();
    let anyPlus = false;
    for (const it of items) {
      if (it.negated) minus = minus.union(it.set);
      else {
        plus = plus.union(it.set);
        anyPlus = true;
      }
    }
    return (anyPlus ? plus : AddressSet.any()).subtract(minus);
  }

  private item(): Item {
    this.skipSpace();
    let negated = false;
    if (this.text[this.pos] === '!') {
      negated = true;
      this.pos++;
      this.skipSpace();
      if (this.text[this.pos] === '!') throw this.fail(`double negation "!!" at position ${this.pos + 1}`);
    }
    const c = this.text[this.pos];
    if (c === undefined || c === ',' || c === ']') {
      throw this.fail(c === undefined ? 'it ends where an address was expected' : `an empty element at position ${this.pos + 1}`);
    }
    if (c === '[') {
      this.pos++;
      const set = this.sequence(true);
      this.pos++; // the ']' checked by sequence()
      return { negated, set };
    }
    if (c === '$') {
      const m = /^[A-Za-z0-9_-]+/.exec(this.text.slice(this.pos + 1));
      if (m === null) throw this.fail(`"$" without a variable name at position ${this.pos + 1}`);
      this.pos += 1 + m[0].length;
      return { negated, set: this.lookup(m[0]) };
    }
    const start = this.pos;
    while (this.pos < this.text.length && !',[]!$'.includes(this.text[this.pos]!)) this.pos++;
    const term = this.text.slice(start, this.pos).trim();
    try {
      return { negated, set: AddressSet.fromTerm(term) };
    } catch (err) {
      if (isAgentError(err, 'ERR_ADDRESS_INVALID')) throw this.fail(`${JSON.stringify(term)} is not a valid address (${String(err.details['problem'])})`);
      throw err;
    }
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private fail(problem: string): AgentError {
    return new AgentError('ERR_HOME_NET_INVALID', `${this.what} is invalid: ${problem}.`, { expression: this.text, problem });
  }
}

function field(obj: unknown, key: string): unknown {
  return obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Record<string, unknown>)[key] : undefined;
}

function oneLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

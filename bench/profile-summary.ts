/**
 * Summarizes a V8 .cpuprofile (as written by `node --cpu-prof`): the top
 * functions by self time, with file:line (mapped back to src/*.ts through
 * dist's source maps when present), their inclusive time, and self time per
 * file. With `--phases phases.json` (written by `bulk-load.ts --cpu-prof`),
 * also one table per phase, from the samples taken during that phase.
 *
 * Usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top 25] [--phases phases.json] [--callers NAME]
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based. */
  readonly lineNumber: number;
  /** 0-based. */
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface PhaseMark {
  readonly name: string;
  readonly startUs: number;
  readonly endUs: number;
}

const ROOT = process.cwd();

// ---- locations ---------------------------------------------------------------------

const sourceMaps = new Map<string, SourceMap | null>();

function sourceMapFor(path: string): SourceMap | null {
  let map = sourceMaps.get(path);
  if (map === undefined) {
    map = null;
    const mapPath = `${path}.map`;
    if (path.includes('/dist/') && existsSync(mapPath)) {
      try {
        map = new SourceMap(
          JSON.parse(readFileSync(mapPath, 'utf8')) as ConstructorParameters<typeof SourceMap>[0],
        );
      } catch {
        map = null;
      }
    }
    sourceMaps.set(path, map);
  }
  return map;
}

function shortPath(path: string): string {
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + 1);
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

/** `file:line` of a frame, 1-based; compiled dist/ code is mapped to its src/ line. */
function location(frame: CallFrame): string {
  if (frame.url === '') return '';
  if (!frame.url.startsWith('file://')) return `${frame.url}:${frame.lineNumber + 1}`;
  const path = fileURLToPath(frame.url);
  const map = sourceMapFor(path);
  if (map !== null) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as {
      originalSource?: string;
      originalLine?: number;
    };
    if (entry.originalSource !== undefined && entry.originalLine !== undefined) {
      // Sources are named relative to the compiled file (`../../src/x.ts`) or as file URLs.
      const source = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : resolve(dirname(path), entry.originalSource);
      return `${shortPath(source)}:${entry.originalLine + 1}`;
    }
  }
  return `${shortPath(path)}:${frame.lineNumber + 1}`;
}

function fileOf(frame: CallFrame): string {
  const at = location(frame);
  if (at === '') return frame.functionName === '' ? '(native)' : frame.functionName; // (garbage collector), (idle), ...
  const colon = at.lastIndexOf(':');
  return colon > 0 ? at.slice(0, colon) : at;
}

// ---- aggregation -------------------------------------------------------------------

interface FunctionStats {
  readonly name: string;
  readonly at: string;
  self: number;
  total: number;
}

interface Summary {
  readonly sampledUs: number;
  readonly functions: FunctionStats[];
  readonly files: Map<string, number>;
  /** With `callersOf`: time inside that function, by its direct caller. */
  readonly callers: Map<string, number>;
  /** With `callersOf`: time inside that function, by the nearest caller in the project's own code. */
  readonly projectCallers: Map<string, number>;
}

const addTo = (map: Map<string, number>, key: string, us: number): void => {
  map.set(key, (map.get(key) ?? 0) + us);
};

/** Aggregates the samples taken inside any of `windows` ([startUs, endUs) on the profile's clock). */
function summarize(
  profile: CpuProfile,
  windows: readonly (readonly [number, number])[],
  callersOf?: string,
): Summary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  /** Native code (a builtin without a script) is named after its JavaScript caller. */
  const displayName = (nodeId: number): string => {
    const frame = byId.get(nodeId)!.callFrame;
    if (frame.functionName !== '') return frame.functionName;
    if (frame.url !== '') return '(anonymous)';
    const caller = parent.get(nodeId);
    const callerFrame = caller === undefined ? undefined : byId.get(caller)?.callFrame;
    return callerFrame === undefined
      ? '(native)'
      : `(native, called by ${callerFrame.functionName || '(anonymous)'} ${location(callerFrame)})`;
  };
  const keyOf = new Map<number, string>();
  const stats = new Map<string, FunctionStats>();
  const statsOf = (nodeId: number): FunctionStats => {
    let key = keyOf.get(nodeId);
    const frame = byId.get(nodeId)!.callFrame;
    if (key === undefined) {
      key = `${displayName(nodeId)}\u0000${frame.url}\u0000${frame.lineNumber}\u0000${frame.columnNumber}`;
      keyOf.set(nodeId, key);
    }
    let s = stats.get(key);
    if (s === undefined) {
      s = {
        name: displayName(nodeId),
        at: location(frame),
        self: 0,
        total: 0,
      };
      stats.set(key, s);
    }
    return s;
  };
  const files = new Map<string, number>();
  const callers = new Map<string, number>();
  const projectCallers = new Map<string, number>();
  const label = (nodeId: number): string => {
    const f = statsOf(nodeId);
    return f.at === '' ? f.name : `${f.name}  (${f.at})`;
  };
  const isProject = (nodeId: number): boolean => /^(src|bench|test)\//.test(statsOf(nodeId).at);

  // Sample i is taken at startTime + sum(timeDeltas[0..i]) and stands for the time until the next sample.
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) {
    t += delta;
    times.push(t);
  }
  let sampledUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i];
    if (!windows.some(([from, to]) => at >= from && at < to)) continue;
    const duration = (i + 1 < times.length ? times[i + 1] : profile.endTime) - at;
    if (duration <= 0) continue;
    sampledUs += duration;
    const leaf = profile.samples[i];
    const own = statsOf(leaf);
    own.self += duration;
    addTo(files, fileOf(byId.get(leaf)!.callFrame), duration);
    // Inclusive time: once per distinct function on the stack (recursion counts once).
    const seen = new Set<FunctionStats>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const s = statsOf(id);
      if (!seen.has(s)) {
        s.total += duration;
        seen.add(s);
      }
    }
    if (callersOf !== undefined) {
      // The innermost call of `callersOf` on this stack, then who called it.
      let id: number | undefined = leaf;
      while (id !== undefined && statsOf(id).name !== callersOf) id = parent.get(id);
      if (id !== undefined) {
        const direct = parent.get(id);
        addTo(callers, direct === undefined ? '(root)' : label(direct), duration);
        let own = direct;
        while (own !== undefined && !isProject(own)) own = parent.get(own);
        addTo(projectCallers, own === undefined ? '(none)' : label(own), duration);
      }
    }
  }
  return { sampledUs, functions: [...stats.values()], files, callers, projectCallers };
}

// ---- output --------------------------------------------------------------------------

const ms = (us: number): string => (us / 1000).toFixed(1).padStart(9);
const pct = (part: number, whole: number): string =>
  `${whole === 0 ? '0.0' : ((part / whole) * 100).toFixed(1)}%`.padStart(6);

function printShares(title: string, map: Map<string, number>, whole: number, top: number): void {
  process.stdout.write(`\n  ${title}:\n`);
  const ranked = [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [key, us] of ranked) process.stdout.write(`${ms(us)} ${pct(us, whole)}  ${key}\n`);
}

function print(title: string, summary: Summary, top: number, callersOf: string | undefined): void {
  const { sampledUs, functions, files } = summary;
  process.stdout.write(`\n== ${title}: ${(sampledUs / 1000).toFixed(0)} ms sampled ==\n`);
  process.stdout.write(
    `${'self ms'.padStart(9)} ${'self'.padStart(6)} ${'total ms'.padStart(9)} ${'total'.padStart(6)}  function  (file:line)\n`,
  );
  const ranked = functions.filter((f) => f.self > 0).sort((a, b) => b.self - a.self);
  for (const f of ranked.slice(0, top)) {
    process.stdout.write(
      `${ms(f.self)} ${pct(f.self, sampledUs)} ${ms(f.total)} ${pct(f.total, sampledUs)}  ${f.name}${f.at === '' ? '' : `  (${f.at})`}\n`,
    );
  }
  printShares('self time by file', files, sampledUs, Math.min(15, top));
  if (callersOf !== undefined) {
    printShares(`time in ${callersOf}, by direct caller`, summary.callers, sampledUs, top);
    printShares(`time in ${callersOf}, by nearest project caller`, summary.projectCallers, sampledUs, top);
  }
}

const USAGE =
  'Usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top 25] [--phases phases.json] [--callers NAME]\n' +
  '  --phases   also summarize each phase of a bench run (phases.json from bulk-load.ts --cpu-prof)\n' +
  '  --callers  also break down the time spent in function NAME by its callers\n';

function main(): void {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
      top: { type: 'string' },
      phases: { type: 'string' },
      callers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help === true || positionals.length !== 1) {
    process.stderr.write(USAGE);
    process.exit(values.help === true ? 0 : 2);
  }
  const top = values.top === undefined ? 25 : Number(values.top);
  if (!Number.isSafeInteger(top) || top < 1)
    throw new Error(`--top must be a positive integer (got ${values.top})`);
  const file = positionals[0];
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (
    !Array.isArray(profile.nodes) ||
    !Array.isArray(profile.samples) ||
    !Array.isArray(profile.timeDeltas)
  ) {
    throw new Error(`${file} is not a .cpuprofile (nodes, samples, timeDeltas)`);
  }
  const callersOf = values.callers;
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  process.stdout.write(`${file}: ${profile.samples.length} samples over ${wallMs.toFixed(0)} ms\n`);
  print('whole profile', summarize(profile, [[-Infinity, Infinity]], callersOf), top, callersOf);

  if (values.phases !== undefined) {
    const { phases } = JSON.parse(readFileSync(values.phases, 'utf8')) as { phases: PhaseMark[] };
    // Repetitions of a phase (changes-1, changes-2, ...) are summarized together.
    const groups = new Map<string, PhaseMark[]>();
    for (const phase of phases) {
      const group = phase.name.replace(/-\d+$/, '');
      groups.set(group, [...(groups.get(group) ?? []), phase]);
    }
    for (const [group, marks] of groups) {
      const wall = marks.reduce((sum, m) => sum + (m.endUs - m.startUs), 0);
      const summary = summarize(
        profile,
        marks.map((m) => [m.startUs, m.endUs] as const),
        callersOf,
      );
      print(
        `phase ${group} (${marks.length} x, ${(wall / 1000).toFixed(0)} ms wall)`,
        summary,
        top,
        callersOf,
      );
    }
  }
}

main();

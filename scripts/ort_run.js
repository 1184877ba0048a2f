#!/usr/bin/env node
// ort_run.js: run an ONNX model in ONNX Runtime (onnxruntime-node, CPU) and write its
// outputs as NPY files. It is the independent reference for rangeguard's outputs (parity
// tests) and the speed peer for its benchmarks.
//
//   node scripts/ort_run.js MODEL.onnx --input NAME=FILE.npy [--input ...]
//        [--output-dir DIR] [--threads N] [--opt all|disable]
//        [--bench-iters K | --bench-seconds S] [--warmup W] [--warmup-seconds S]
//        [--batch B] [--profile]
//
// - A model with a single input also accepts `--input FILE.npy`.
// - NPY: format versions 1, 2 and 3, C order, little-endian dtypes
//   <f4 <f8 <i8 <i4 <i2 <u2 <u4 <u8 |b1 |u1 |i1.
// - Each output is written to DIR/<name>.npy, characters outside [A-Za-z0-9_.-] of the
//   name replaced by '_'. Without --output-dir and --bench-iters, one line per output
//   (name, dtype, shape) is printed instead.
// - Session: intraOpNumThreads = --threads (default 1), interOpNumThreads 1, sequential
//   execution, graph optimisation level 'all' ('disabled' with --opt disable).
// - --bench-iters K: after W warm-up runs (default 3), K runs are timed one by one and a
//   single JSON line is printed on stdout:
//   {"median_ms","p90_ms","min_ms","max_ms","mean_ms","iters","warmup","batch","threads","rss_mb","max_rss_mb"}
//   (warmup: the warm-up runs done; batch: the first input's first dimension)
//   rss_mb is the largest process.memoryUsage().rss seen after session creation and after
//   every run; max_rss_mb is the OS's peak resident set size of the whole process.
// - --bench-seconds S: like --bench-iters, but runs are timed until S seconds have passed
//   (at least --bench-iters runs, default 1); --warmup-seconds S likewise keeps warming up
//   until S seconds have passed (after at least --warmup runs).
// - --batch B: every input's first (batch) dimension becomes B: the NPY's samples are
//   taken in order and repeated cyclically (B=1 keeps the first sample, B=8 from a batch-2
//   file repeats it four times). For models with a dynamic batch axis.
// - --profile (with --bench-iters/--bench-seconds): ONNX Runtime's own per-node profile of
//   the timed runs, added to the JSON line as "profile": [{"node","op","ms"}] (each node's
//   median time per run, costliest first; node names are ORT's after its graph fusions)
//   and "by_op": {op: ms}, to set against `rangeguard bench --profile`. Profiling costs
//   a little time itself, so its runs' statistics read slightly slower.
// - Errors: one line on stderr, exit code 1.
//
// onnxruntime-node is looked up in <repo>/third_party/ort/node_modules (installed by
// scripts/setup.sh), then through the ORT_NODE_MODULE environment variable, then through
// Node's normal module resolution.
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE = `usage: node scripts/ort_run.js MODEL.onnx --input NAME=FILE.npy [--input ...]
           [--output-dir DIR] [--threads N] [--opt all|disable]
           [--bench-iters K | --bench-seconds S] [--warmup W] [--warmup-seconds S] [--batch B]
           [--profile]
  --input NAME=FILE.npy  feed FILE.npy to the model input NAME (FILE.npy alone: single-input model)
  --output-dir DIR       write every output to DIR/<output name>.npy
  --threads N            intra-op threads (default 1)
  --opt all|disable      ONNX Runtime graph optimisations (default all)
  --bench-iters K        time K runs and print one JSON line of statistics
  --bench-seconds S      like --bench-iters, timing runs until S seconds have passed
  --warmup W             untimed runs before the timed ones (default 3)
  --warmup-seconds S     keep warming up until S seconds have passed (after W runs)
  --batch B              resize every input's first dimension to B (samples repeated cyclically)
  --profile              with --bench-*: ONNX Runtime's per-node times of the timed runs (median ms)
example:
  node scripts/ort_run.js model.onnx --input input=x.npy --output-dir out/`;

class UserError extends Error {}

function fail(msg) {
  throw new UserError(msg);
}

// ---------------------------------------------------------------- ONNX Runtime loading
function loadOrt() {
  const candidates = [];
  if (process.env.ORT_NODE_MODULE) candidates.push(process.env.ORT_NODE_MODULE);
  candidates.push(path.join(__dirname, '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node'));
  candidates.push('onnxruntime-node');
  const errors = [];
  for (const c of candidates) {
    try {
      return require(c);
    } catch (e) {
      if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(c)) {
        errors.push(c);
        continue;
      }
      throw e;
    }
  }
  fail(`onnxruntime-node not found (looked in ${errors.join(', ')}); run scripts/setup.sh`);
}

// ---------------------------------------------------------------- NPY
// NPY descr -> [ORT tensor type, typed array constructor, element size]
const NPY_TYPES = {
  '<f4': ['float32', Float32Array, 4],
  '<f8': ['float64', Float64Array, 8],
  '<i8': ['int64', BigInt64Array, 8],
  '<i4': ['int32', Int32Array, 4],
  '<i2': ['int16', Int16Array, 2],
  '<u2': ['uint16', Uint16Array, 2],
  '<u4': ['uint32', Uint32Array, 4],
  '<u8': ['uint64', BigUint64Array, 8],
  '|b1': ['bool', Uint8Array, 1],
  '|u1': ['uint8', Uint8Array, 1],
  '|i1': ['int8', Int8Array, 1],
};
const ORT_TO_NPY = {};
for (const [descr, [type]] of Object.entries(NPY_TYPES)) ORT_TO_NPY[type] = descr;
// numpy writes these single-byte types with '|', but '<' / '>' / '=' are legal too.
const ONE_BYTE_ALIASES = { b1: '|b1', u1: '|u1', i1: '|i1' };

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed arrays use the host byte order; every platform ORT ships for is little-endian.
  throw new Error('ort_run.js needs a little-endian host');
}

function parseNpyHeader(header, file) {
  const descrM = header.match(/['"]descr['"]\s*:\s*['"]([^'"]*)['"]/);
  const fortranM = header.match(/['"]fortran_order['"]\s*:\s*(True|False)/);
  const shapeM = header.match(/['"]shape['"]\s*:\s*\(([^)]*)\)/);
  if (!descrM || !fortranM || !shapeM) fail(`${file}: malformed NPY header: ${header.trim()}`);
  let descr = descrM[1];
  if (descr.length === 3 && '<>=|'.includes(descr[0]) && ONE_BYTE_ALIASES[descr.slice(1)]) {
    descr = ONE_BYTE_ALIASES[descr.slice(1)];
  } else if (descr[0] === '=') {
    descr = '<' + descr.slice(1); // native order; the host is little-endian (checked above)
  }
  if (!NPY_TYPES[descr]) {
    fail(`${file}: unsupported NPY dtype '${descrM[1]}' (supported: ${Object.keys(NPY_TYPES).join(' ')})`);
  }
  if (fortranM[1] === 'True') fail(`${file}: Fortran-order NPY arrays are not supported (save with C order)`);
  const shapeText = shapeM[1].trim();
  const dims = shapeText === ''
    ? []
    : shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
      if (!/^\d+L?$/.test(s)) fail(`${file}: bad NPY shape '(${shapeText})'`);
      return parseInt(s, 10);
    });
  return { descr, dims };
}

function readNpy(ort, file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.code || e.message}`);
  }
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    fail(`${file}: not an NPY file (bad magic)`);
  }
  const major = buf[6];
  let headerLen;
  let headerStart;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail(`${file}: truncated NPY header`);
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    fail(`${file}: unsupported NPY format version ${major}.${buf[7]}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > buf.length) fail(`${file}: truncated NPY header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart);
  const { descr, dims } = parseNpyHeader(header, file);
  const [type, Ctor, size] = NPY_TYPES[descr];
  const count = dims.reduce((a, b) => a * b, 1);
  const nbytes = count * size;
  if (buf.length - dataStart < nbytes) {
    fail(`${file}: holds ${buf.length - dataStart} data bytes, shape (${dims.join(', ')}) of ${descr} needs ${nbytes}`);
  }
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of the
  // element size.
  const ab = new ArrayBuffer(nbytes);
  new Uint8Array(ab).set(buf.subarray(dataStart, dataStart + nbytes));
  return new ort.Tensor(type, new Ctor(ab), dims);
}

function npyBytes(tensor, name) {
  const descr = ORT_TO_NPY[tensor.type];
  if (!descr) fail(`output '${name}' has type ${tensor.type}, which cannot be written as NPY`);
  const dims = tensor.dims.map(Number);
  const shape = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so that magic + length + header + '\n' is a multiple of 64 bytes.
  let version = 1;
  let prefix = 10;
  let total = prefix + header.length + 1;
  if (total + 63 > 0xffff + 10) {
    version = 2;
    prefix = 12;
    total = prefix + header.length + 1;
  }
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(prefix);
  head[0] = 0x93;
  head.write('NUMPY', 1, 'latin1');
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

function safeFileName(name) {
  const s = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return s === '' || s === '.' || s === '..' ? s.replace(/\./g, '_') || '_' : s;
}

// ---------------------------------------------------------------- command line
function parseArgs(argv) {
  const opts = {
    model: null, inputs: [], outputDir: null, threads: 1, opt: 'all', benchIters: 0, warmup: 3,
    benchSeconds: 0, warmupSeconds: 0, batch: 0, profile: false,
  };
  const needValue = (i, flag) => {
    if (i + 1 >= argv.length) fail(`${flag} needs a value`);
    return argv[i + 1];
  };
  const intArg = (v, flag, min) => {
    if (!/^\d+$/.test(v) || parseInt(v, 10) < min) fail(`${flag} needs an integer >= ${min}, got '${v}'`);
    return parseInt(v, 10);
  };
  const secondsArg = (v, flag) => {
    if (!/^\d+(\.\d*)?$|^\.\d+$/.test(v)) fail(`${flag} needs a number of seconds >= 0, got '${v}'`);
    return parseFloat(v);
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inlineValue = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inlineValue = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const value = (flag) => {
      if (inlineValue !== null) return inlineValue;
      const v = needValue(i, flag);
      i++;
      return v;
    };
    switch (a) {
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      case '--input':
      case '-i':
        opts.inputs.push(value(a));
        break;
      case '--output-dir':
      case '-o':
        opts.outputDir = value(a);
        break;
      case '--threads':
        opts.threads = intArg(value(a), a, 0);
        break;
      case '--opt': {
        const v = value(a);
        if (v === 'all') opts.opt = 'all';
        else if (v === 'disable' || v === 'disabled' || v === 'none') opts.opt = 'disabled';
        else if (v === 'basic' || v === 'extended') opts.opt = v;
        else fail(`--opt must be all or disable, got '${v}'`);
        break;
      }
      case '--profile':
        opts.profile = true;
        break;
      case '--bench-iters':
        opts.benchIters = intArg(value(a), a, 1);
        break;
      case '--warmup':
        opts.warmup = intArg(value(a), a, 0);
        break;
      case '--bench-seconds':
        opts.benchSeconds = secondsArg(value(a), a);
        if (opts.benchSeconds <= 0) fail(`${a} must be > 0`);
        break;
      case '--warmup-seconds':
        opts.warmupSeconds = secondsArg(value(a), a);
        break;
      case '--batch':
        opts.batch = intArg(value(a), a, 1);
        break;
      default:
        if (a.startsWith('-') && a !== '-') fail(`unknown option '${argv[i]}' (see --help)`);
        if (opts.model !== null) fail(`unexpected argument '${a}' (model already given as '${opts.model}')`);
        opts.model = a;
    }
  }
  if (opts.model === null) fail('no model given (see --help)');
  if (opts.inputs.length === 0) fail('no --input given (see --help)');
  if (opts.benchSeconds && !opts.benchIters) opts.benchIters = 1;
  if (opts.profile && !opts.benchIters) fail('--profile needs --bench-iters or --bench-seconds');
  return opts;
}

// Resolves every --input to [input name, file].
function resolveInputs(specs, inputNames) {
  const feeds = new Map();
  for (const spec of specs) {
    let name = null;
    let file = spec;
    const eq = spec.indexOf('=');
    if (eq > 0 && (inputNames.includes(spec.slice(0, eq)) || !fs.existsSync(spec))) {
      name = spec.slice(0, eq);
      file = spec.slice(eq + 1);
    }
    if (name === null) {
      if (inputNames.length !== 1) {
        fail(`--input ${spec}: the model has ${inputNames.length} inputs (${inputNames.join(', ')}); use --input NAME=FILE.npy`);
      }
      name = inputNames[0];
    }
    if (!inputNames.includes(name)) fail(`--input ${spec}: the model has no input '${name}' (inputs: ${inputNames.join(', ')})`);
    if (feeds.has(name)) fail(`input '${name}' given twice`);
    feeds.set(name, file);
  }
  const missing = inputNames.filter((n) => !feeds.has(n));
  if (missing.length) fail(`no --input for model input(s) ${missing.join(', ')}`);
  return feeds;
}

// A tensor whose first dimension is `batch`: samples taken in order, repeated cyclically.
function withBatch(ort, tensor, batch, name) {
  const dims = tensor.dims.map(Number);
  if (dims.length === 0 || dims[0] === 0) fail(`--batch: input '${name}' has no samples to repeat (shape [${dims.join(', ')}])`);
  if (dims[0] === batch) return tensor;
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const src = tensor.data;
  const out = new src.constructor(batch * per);
  for (let b = 0; b < batch; b++) {
    const s = (b % dims[0]) * per;
    out.set(src.subarray(s, s + per), b * per);
  }
  return new ort.Tensor(tensor.type, out, [batch, ...dims.slice(1)]);
}

// ---------------------------------------------------------------- statistics
function summarize(timesMs) {
  const s = [...timesMs].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const p90 = s[Math.min(n - 1, Math.max(0, Math.ceil(0.9 * n) - 1))]; // nearest rank
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const r = (x) => Math.round(x * 1e4) / 1e4;
  return { median_ms: r(median), p90_ms: r(p90), min_ms: r(s[0]), max_ms: r(s[n - 1]), mean_ms: r(mean), iters: n };
}

// ---------------------------------------------------------------- profile
// ORT's profile file (chrome-trace JSON): each node's median kernel time over the runs
// after the first `skip` (the warm-up), and the sum of those medians per operator.
function nodeProfile(file, skip) {
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const from = runs.length > skip ? runs[skip].ts : 0;
  const per = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    if (!per.has(node)) per.set(node, { op: (e.args && e.args.op_name) || '?', times: [] });
    per.get(node).times.push(e.dur / 1000);
  }
  const r = (x) => Math.round(x * 1e4) / 1e4;
  const profile = [...per].map(([node, v]) => ({ node, op: v.op, ms: r(summarize(v.times).median_ms) }));
  profile.sort((a, b) => b.ms - a.ms);
  const byOp = {};
  for (const p of profile) byOp[p.op] = r((byOp[p.op] || 0) + p.ms);
  return { profile, by_op: byOp };
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.model)) fail(`model not found: ${opts.model}`);
  const ort = loadOrt();
  try {
    ort.env.logLevel = 'error';
  } catch (e) { /* older bindings */ }

  const sessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.opt,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  let profileDir = null;
  if (opts.profile) {
    profileDir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'ort_profile-'));
    sessionOptions.enableProfiling = true;
    sessionOptions.profileFilePrefix = path.join(profileDir, 'p');
  }
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, sessionOptions);
  } catch (e) {
    fail(`cannot load ${opts.model}: ${e.message}`);
  }
  const fileOf = resolveInputs(opts.inputs, session.inputNames);
  const feeds = {};
  for (const [name, file] of fileOf) {
    feeds[name] = readNpy(ort, file);
    if (opts.batch) feeds[name] = withBatch(ort, feeds[name], opts.batch, name);
  }

  const run = async () => {
    try {
      return await session.run(feeds);
    } catch (e) {
      fail(`inference failed: ${e.message}`);
    }
    return null;
  };

  let rssMax = process.memoryUsage().rss;
  let results = await run();
  rssMax = Math.max(rssMax, process.memoryUsage().rss);

  if (opts.outputDir !== null) {
    fs.mkdirSync(opts.outputDir, { recursive: true });
    for (const name of session.outputNames) {
      const file = path.join(opts.outputDir, safeFileName(name) + '.npy');
      fs.writeFileSync(file, npyBytes(results[name], name));
    }
  } else if (!opts.benchIters) {
    for (const name of session.outputNames) {
      const t = results[name];
      process.stdout.write(`${name}: ${t.type} [${t.dims.join(', ')}]\n`);
    }
  }

  if (opts.benchIters) {
    results = null;
    // The first run above counts as one warm-up run.
    const warmStart = process.hrtime.bigint();
    const elapsedS = (since) => Number(process.hrtime.bigint() - since) / 1e9;
    let warm = 1;
    while (warm < opts.warmup || (opts.warmupSeconds && elapsedS(warmStart) < opts.warmupSeconds)) {
      await run();
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      warm++;
    }
    const times = [];
    const benchStart = process.hrtime.bigint();
    while (times.length < opts.benchIters || (opts.benchSeconds && elapsedS(benchStart) < opts.benchSeconds)) {
      const t0 = process.hrtime.bigint();
      await run();
      const t1 = process.hrtime.bigint();
      times.push(Number(t1 - t0) / 1e6);
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
    }
    const report = summarize(times);
    report.warmup = warm;
    const firstDims = Object.values(feeds)[0].dims;
    if (firstDims.length) report.batch = Number(firstDims[0]);
    report.threads = opts.threads;
    report.rss_mb = Math.round((rssMax / (1024 * 1024)) * 10) / 10;
    report.max_rss_mb = Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10; // maxRSS is in KiB
    if (profileDir) {
      session.endProfiling();
      const files = fs.readdirSync(profileDir);
      if (files.length !== 1) fail(`expected one ONNX Runtime profile in ${profileDir}, found ${files.length}`);
      Object.assign(report, nodeProfile(path.join(profileDir, files[0]), warm));
      fs.rmSync(profileDir, { recursive: true, force: true });
    }
    process.stdout.write(JSON.stringify(report) + '\n');
  }
}

function oneLine(msg) {
  return String(msg).split('\n').map((s) => s.trim()).filter((s) => s).join(' ');
}

main().then(
  () => process.exit(0),
  (e) => {
    const msg = e instanceof UserError ? e.message : `internal error: ${(e && e.message) || e}`;
    process.stderr.write(`ort_run: ${oneLine(msg)}\n`);
    process.exit(1);
  },
);

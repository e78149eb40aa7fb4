#!/usr/bin/env node
// serve-load.mjs — a load client for bn-serve (or any OpenAI-style server):
// C concurrent clients, each sending R streamed requests one after another
// (completions and chat, greedy and seeded, over a set of distinct
// prompts). Every answer's server-sent events are parsed; each request's
// time to first token, tokens (usage, else chunks) and total time are
// recorded. Prints one JSON object of figures on stdout and a short line
// on stderr. With --check it first asks every distinct request once, one
// at a time, and then wants every concurrent answer byte-identical to it.
// Exit 0 when every request was answered (and matched); 1 on a mismatch, a
// 5xx, a missing or cut answer, or the deadline; 2 on a usage error.
// Plain Node >= 18 (global fetch), no dependencies.

const USAGE = `usage: node serve-load.mjs [options]
  --url URL          server (default http://127.0.0.1:8080; BN_SERVE_URL)
  -c, --clients N    concurrent streaming clients (default 8)
  -r, --requests N   requests each client sends in turn (default 4)
  -n, --max-tokens N max_tokens of every request (default 32)
  --distinct N       distinct requests, cycled over (default 16)
  --endpoint E       completions, chat or mixed (default mixed: alternate)
  --sampling S       greedy, seeded or mixed (default mixed: half greedy,
                     half temperature 0.8 with a fixed seed each)
  --prompts FILE     prompts, one a line (default: a built-in set)
  --check            ask each distinct request alone first; every concurrent
                     answer must be byte-identical to it
  --retries N        retry a request up to N times after a connection error,
                     a 502/503/504 or a cut stream (default 0: each is a failure)
  --timeout S        seconds a request may take (default 120)
  --deadline S       seconds for everything (default 600)
  --api-key KEY      Bearer key (default: BN_API_KEY)
  --quiet            no line on stderr
`;

import { setMaxListeners } from 'node:events';

const DEFAULT_PROMPTS = [
  'It was a fine morning, and Elizabeth',
  'Mr. Darcy said',
  'The letter was',
  'It is a truth universally acknowledged',
  'Jane smiled and',
  'Longbourn was quiet when',
  'Mrs. Bennet could not',
  'The ball at Netherfield',
  'Mr. Collins began',
  'Lydia ran into the room',
  'Charlotte Lucas thought',
  'In the library, Mr. Bennet',
  'The carriage stopped',
  'Kitty coughed, and',
  'Pemberley stood on',
  'Lady Catherine asked',
];

function usageError(msg) {
  process.stderr.write(`serve-load: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    url: process.env.BN_SERVE_URL || 'http://127.0.0.1:8080', clients: 8, requests: 4, maxTokens: 32,
    distinct: 16, endpoint: 'mixed', sampling: 'mixed', prompts: null, check: false, retries: 0,
    timeout: 120, deadline: 600, apiKey: process.env.BN_API_KEY || '', quiet: false,
  };
  const ints = { '-c': 'clients', '--clients': 'clients', '-r': 'requests', '--requests': 'requests',
    '-n': 'maxTokens', '--max-tokens': 'maxTokens', '--distinct': 'distinct', '--retries': 'retries' };
  const nums = { '--timeout': 'timeout', '--deadline': 'deadline' };
  const strs = { '--url': 'url', '--endpoint': 'endpoint', '--sampling': 'sampling', '--prompts': 'prompts',
    '--api-key': 'apiKey' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--check') {
      o.check = true;
    } else if (a === '--quiet') {
      o.quiet = true;
    } else if (a in ints || a in nums || a in strs) {
      if (i + 1 >= argv.length) usageError(`${a} needs a value`);
      const v = argv[++i];
      if (a in strs) {
        o[strs[a]] = v;
      } else {
        const x = Number(v);
        const ok = a in ints ? Number.isInteger(x) && x >= (a === '--retries' ? 0 : 1) && x <= 1e6 : x > 0;
        if (!ok) usageError(`${a}: '${v}' is not a valid value`);
        o[ints[a] || nums[a]] = x;
      }
    } else {
      usageError(`unknown argument '${a}'`);
    }
  }
  if (!['completions', 'chat', 'mixed'].includes(o.endpoint)) usageError(`--endpoint: '${o.endpoint}'`);
  if (!['greedy', 'seeded', 'mixed'].includes(o.sampling)) usageError(`--sampling: '${o.sampling}'`);
  o.url = o.url.replace(/\/+$/, '');
  return o;
}

// The distinct requests: prompt, endpoint and sampling vary together so
// each is a different question.
async function requestSet(o) {
  let prompts = DEFAULT_PROMPTS;
  if (o.prompts) {
    const fs = await import('node:fs');
    prompts = fs.readFileSync(o.prompts, 'utf8').split('\n').filter((l) => l.length);
    if (!prompts.length) usageError(`${o.prompts}: no prompts`);
  }
  const set = [];
  for (let k = 0; k < o.distinct; k++) {
    const prompt = prompts[k % prompts.length];
    const chat = o.endpoint === 'chat' || (o.endpoint === 'mixed' && k % 2 === 1);
    const seeded = o.sampling === 'seeded' || (o.sampling === 'mixed' && k % 4 >= 2);
    const body = { max_tokens: o.maxTokens, stream: true };
    if (chat) body.messages = [{ role: 'user', content: prompt }];
    else body.prompt = prompt;
    if (seeded) Object.assign(body, { temperature: 0.8, seed: 1000 + k });
    else body.temperature = 0;
    set.push({ path: chat ? '/v1/chat/completions' : '/v1/completions', body: JSON.stringify(body) });
  }
  return set;
}

class Failure extends Error {
  constructor(kind, msg, status) {
    super(msg);
    this.kind = kind; // 'http', 'connect', 'cut', 'bad', 'timeout'
    this.status = status;
  }
}

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

// One streamed request: its text, finish reason, usage, time to the first
// piece of text and in all. Throws a Failure.
async function streamOnce(o, req, stop, counts) {
  const ctl = new AbortController();
  const onStop = () => ctl.abort();
  stop.addEventListener('abort', onStop);
  const timer = setTimeout(() => ctl.abort(), o.timeout * 1000);
  const t0 = now();
  let ttft = null;
  try {
    const headers = { 'Content-Type': 'application/json' };
    if (o.apiKey) headers.Authorization = `Bearer ${o.apiKey}`;
    let res;
    try {
      res = await fetch(o.url + req.path, { method: 'POST', headers, body: req.body, signal: ctl.signal });
    } catch (e) {
      const kind = ctl.signal.aborted ? 'timeout' : 'connect';
      counts[kind] = (counts[kind] || 0) + 1;
      throw new Failure(kind, `no answer: ${e.cause?.code || e.cause?.message || e.message}`);
    }
    counts[res.status] = (counts[res.status] || 0) + 1;
    if (res.status !== 200) {
      const text = await res.text().catch(() => '');
      throw new Failure('http', `status ${res.status}: ${text.slice(0, 200)}`, res.status);
    }
    const dec = new TextDecoder('utf-8', { fatal: true });
    let buf = '';
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    let done = false;
    const reader = res.body.getReader();
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        const kind = ctl.signal.aborted ? 'timeout' : 'cut';
        counts[kind] = (counts[kind] || 0) + 1;
        throw new Failure(kind, `stream cut: ${e.cause?.code || e.cause?.message || e.message}`);
      }
      if (r.done) break;
      buf += dec.decode(r.value, { stream: true });
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (done) throw new Failure('bad', 'an event after [DONE]');
        if (!ev.startsWith('data: ')) throw new Failure('bad', `not a data event: ${ev.slice(0, 80)}`);
        const data = ev.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const j = JSON.parse(data);
        if (j.error) throw new Failure('bad', `error event: ${j.error.message}`);
        const c = j.choices[0];
        const piece = c.delta ? c.delta.content || '' : c.text || '';
        if (piece) {
          if (ttft === null) ttft = now() - t0;
          text += piece;
          chunks++;
        }
        if (c.finish_reason) {
          if (finish) throw new Failure('bad', 'two finish reasons');
          finish = c.finish_reason;
          usage = j.usage || null;
        }
      }
    }
    buf += dec.decode();
    if (!done || buf.trim()) {
      counts.cut = (counts.cut || 0) + 1;
      throw new Failure('cut', 'the stream ended before [DONE]');
    }
    if (!finish) throw new Failure('bad', 'no finish_reason');
    const total = now() - t0;
    return {
      text, finish, usage, ttft: ttft === null ? total : ttft, total,
      tokens: usage ? usage.completion_tokens : chunks,
      promptTokens: usage ? usage.prompt_tokens : 0,
    };
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(ctl.signal.aborted ? 'timeout' : 'bad', e.message);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}

const retryable = (f) => f.kind === 'connect' || f.kind === 'cut' || (f.kind === 'http' && [502, 503, 504].includes(f.status));

// A request with its retries: { ok, answer | error, attempts }.
async function ask(o, req, stop, counts) {
  for (let attempt = 0; ; attempt++) {
    try {
      return { ok: true, answer: await streamOnce(o, req, stop, counts), attempts: attempt + 1 };
    } catch (f) {
      if (stop.aborted || attempt >= o.retries || !retryable(f))
        return { ok: false, error: f, attempts: attempt + 1 };
      counts.retried = (counts.retried || 0) + 1;
      await new Promise((r) => setTimeout(r, Math.min(100 * (attempt + 1), 1000)));
    }
  }
}

function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const same = (a, b) => a.text === b.text && a.finish === b.finish && a.tokens === b.tokens;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const set = await requestSet(o);
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // every request in flight listens to it
  let late = false;
  const deadline = setTimeout(() => {
    late = true;
    stop.abort();
  }, o.deadline * 1000);
  const problems = [];
  const problem = (msg) => {
    if (problems.length < 20) problems.push(msg);
  };

  // one at a time: every distinct request's own answer
  const alone = [];
  const aloneCounts = {};
  if (o.check) {
    for (let k = 0; k < set.length && !stop.signal.aborted; k++) {
      const r = await ask(o, set[k], stop.signal, aloneCounts);
      if (!r.ok) problem(`request ${k} alone: ${r.error.message}`);
      alone.push(r.ok ? r.answer : null);
    }
  }

  // C clients at once, each R requests in turn
  const counts = {};
  const results = [];
  const t0 = now();
  const client = async (c) => {
    for (let i = 0; i < o.requests && !stop.signal.aborted; i++) {
      const k = (c * o.requests + i) % set.length;
      const r = await ask(o, set[k], stop.signal, counts);
      r.k = k;
      results.push(r);
      if (!r.ok) problem(`client ${c} request ${i} (#${k}): ${r.error.message}`);
      else if (o.check && alone[k] && !same(r.answer, alone[k]))
        problem(`client ${c} request ${i} (#${k}): answer differs from its one-at-a-time answer`);
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  const wall = (now() - t0) / 1000;
  clearTimeout(deadline);

  const ok = results.filter((r) => r.ok).map((r) => r.answer);
  const mismatches = o.check ? results.filter((r) => r.ok && alone[r.k] && !same(r.answer, alone[r.k])).length : 0;
  const tokens = ok.reduce((s, a) => s + a.tokens, 0);
  const expected = o.clients * o.requests;
  const fiveXX = Object.entries(counts).filter(([s]) => /^5\d\d$/.test(s)).reduce((s, [, n]) => s + n, 0);
  const round = (x) => (x === null ? null : Math.round(x * 10) / 10);
  const report = {
    url: o.url, clients: o.clients, requests_per_client: o.requests, max_tokens: o.maxTokens,
    distinct: set.length, requests: expected, answered: ok.length, failed: results.length - ok.length,
    missing: expected - results.length, status: counts,
    ttft_ms: { p50: round(percentile(ok.map((a) => a.ttft), 50)), p99: round(percentile(ok.map((a) => a.ttft), 99)),
      max: round(percentile(ok.map((a) => a.ttft), 100)) },
    total_ms: { p50: round(percentile(ok.map((a) => a.total), 50)), p99: round(percentile(ok.map((a) => a.total), 99)) },
    completion_tokens: tokens, prompt_tokens: ok.reduce((s, a) => s + a.promptTokens, 0),
    wall_s: Math.round(wall * 1000) / 1000, tokens_per_s: round(wall > 0 ? tokens / wall : 0),
    retried: counts.retried || 0, checked: o.check, mismatches, alone_status: o.check ? aloneCounts : undefined,
    alone_tokens: o.check ? alone.reduce((s, a) => s + (a ? a.tokens : 0), 0) : undefined,
    deadline_hit: late, problems,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  const pass = !late && !problems.length && ok.length === expected && (o.retries > 0 || fiveXX === 0);
  if (!o.quiet) {
    process.stderr.write(`serve-load: ${o.clients} clients x ${o.requests}: ${ok.length}/${expected} answered` +
      `${o.check ? `, ${mismatches} differ` : ''}, TTFT p50 ${report.ttft_ms.p50} ms p99 ${report.ttft_ms.p99} ms, ` +
      `${report.tokens_per_s} tokens/s (${tokens} in ${report.wall_s} s)${late ? ', DEADLINE' : ''}` +
      `${pass ? '' : ' — FAILED'}\n`);
    for (const p of problems) process.stderr.write(`serve-load: ${p}\n`);
  }
  process.exit(pass ? 0 : 1);
}

main().catch((e) => {
  process.stderr.write(`serve-load: ${e.stack || e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// gen-corpus.js — writes a deterministic pseudo-random document for the
// tokenizer tests: a mix of words, scripts, digits, punctuation, whitespace
// runs, contractions, emoji sequences and combining marks, drawn from code
// point ranges assigned since early Unicode versions (so PCRE2's and V8's
// Unicode tables agree on them).
//
//   node gen-corpus.js SEED BYTES [--invalid] > FILE
//
// --invalid sprinkles bytes that are not UTF-8 (the output is then binary).
'use strict';

const [seedArg, bytesArg, flag] = process.argv.slice(2);
if (!seedArg || !bytesArg) {
  process.stderr.write('usage: gen-corpus.js SEED BYTES [--invalid]\n');
  process.exit(2);
}
let state = BigInt(seedArg) | 1n;
function rnd(n) { // xorshift64*, uniform enough for test data
  state ^= state >> 12n; state ^= (state << 25n) & 0xffffffffffffffffn; state ^= state >> 27n;
  const v = (state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  return Number(v >> 11n) % n;
}
const pick = (a) => a[rnd(a.length)];

const words = ['the', 'The', 'THE', 'of', 'and', 'tokenizer', 'Elizabeth', 'pipeline', 'naïve', 'café',
  'über', 'façade', 'don\'t', 'I\'M', 'you\'Re', 'WE\'LL', 'it\'s', 'o\'clock', 'hello', 'world', 'x',
  'résumé', 'Straße', 'ﬁne', 'İstanbul', 'ǅemal'];
const ranges = [[0x41, 0x5a], [0x61, 0x7a], [0xc0, 0xff], [0x100, 0x17f], [0x391, 0x3c9], [0x410, 0x44f],
  [0x5d0, 0x5ea], [0x621, 0x64a], [0x660, 0x669], [0x905, 0x939], [0x966, 0x96f], [0xe01, 0xe2e],
  [0x3041, 0x3093], [0x30a1, 0x30f6], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff10, 0xff19],
  [0x2160, 0x216f], [0x2460, 0x2473], [0xb2, 0xb3], [0xbc, 0xbe]];
const marks = [0x300, 0x301, 0x302, 0x303, 0x308, 0x30a, 0x327, 0x328, 0x94d, 0x93e, 0x20dd];
const spaces = [' ', ' ', ' ', '  ', '\t', '\n', '\n\n', '\r\n', ' \n', '   ', '\u00a0', '\u3000', '\u0085',
  '\u2028', '\u200b', '\ufeff', '\u000b', '\u000c', '\u001f'];
const punct = ['.', ',', '!', '?', ';', ':', '"', '\'', '(', ')', '[', ']', '{', '}', '-', '--', '...', '—',
  '“', '”', '«', '»', '/', '\\', '#', '$', '%', '&', '*', '+', '=', '<', '>', '@', '^', '_', '`', '|', '~',
  '<|eot_id|>', '<|begin_of_text|>'];
const emoji = ['😀', '👍🏽', '👨‍👩‍👧', '🏳️‍🌈', '❤️', '🇫🇷', '1️⃣', '🤷‍♂️', '🧑🏿‍💻'];

function piece() {
  switch (rnd(10)) {
    case 0: case 1: case 2: return pick(words);
    case 3: { let s = ''; const r = pick(ranges); for (let k = 1 + rnd(8); k > 0; k--) s += String.fromCodePoint(r[0] + rnd(r[1] - r[0] + 1)); return s; }
    case 4: return String(rnd(10 ** (1 + rnd(9))));
    case 5: case 6: return pick(spaces);
    case 7: return pick(punct);
    case 8: return pick(emoji);
    default: return pick(words) + String.fromCodePoint(pick(marks));
  }
}

const want = Number(bytesArg);
const parts = [];
let size = 0;
const enc = new TextEncoder();
while (size < want) {
  let b = enc.encode(piece());
  if (flag === '--invalid' && rnd(12) === 0) {
    const bad = [[0xff], [0x80], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8]];
    b = Uint8Array.from([...b, ...pick(bad)]);
  }
  parts.push(b);
  size += b.length;
}
process.stdout.write(Buffer.concat(parts));

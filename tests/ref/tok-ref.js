#!/usr/bin/env node
// tok-ref.js — the independent reference for bn-tokenize's tests: encodes
// files with js-tiktoken (npm, not our code) using a tiktoken rank file and
// the Llama 3 pattern, and prints one line of decimal ids per file, the same
// text form bn-tokenize writes (bn-tokens(5)).
//
//   node tok-ref.js --ranks FILE [--specials N] [--special] [--bos ID] FILE...
//   node tok-ref.js --bench --ranks FILE FILE     (prints MB/s of encoding FILE)
//
// --specials N: N special tokens follow the ranks, named as Llama 3 / BitNet's
// tokenizer.py name them (ids = number of ranks + k). --special lets their
// text in the input become their ids (tiktoken's allowed_special="all");
// without it they are plain text (disallowed_special=()).
//
// Input is bytes. js-tiktoken takes JavaScript strings, which cannot hold
// bytes that are not UTF-8, so this script applies the documented rule for
// them itself: the bytes are cut into maximal runs of well-formed UTF-8 and
// maximal runs of bytes at which no well-formed character starts; valid runs
// go to js-tiktoken, each invalid run is byte-pair encoded as one piece with
// the same ranks (whole run first, then lowest-rank pair merging, as
// tiktoken's byte_pair_encode does).
'use strict';

const fs = require('fs');
const { Tiktoken } = require('js-tiktoken/lite');

// The Llama 3 pre-tokenizer regex, rewritten for JavaScript:
// - JavaScript (Node 20) has no inline (?i:...) group, so the contractions
//   are spelled out. tiktoken's Rust regex folds case by Unicode simple case
//   folding, under which 's' also matches U+017F LATIN SMALL LETTER LONG S;
//   no other letter of these suffixes has an extra fold.
// - JavaScript's \s is not Unicode White_Space: it includes U+FEFF and
//   leaves out U+0085. tiktoken's \s is White_Space, so \s and \S are
//   replaced by \p{White_Space} and \P{White_Space}.
// - \p{L} and \p{N} are the same Unicode properties under the u flag.
const LLAMA3_PATTERN =
  "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])" +
  '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+' +
  '|\\p{N}{1,3}' +
  '| ?[^\\p{White_Space}\\p{L}\\p{N}]+[\\r\\n]*' +
  '|\\p{White_Space}*[\\r\\n]+' +
  '|\\p{White_Space}+(?!\\P{White_Space})' +
  '|\\p{White_Space}+';

function specialName(k) {
  const fixed = [
    '<|begin_of_text|>', '<|end_of_text|>',
    '<|reserved_special_token_0|>', '<|reserved_special_token_1|>',
    '<|reserved_special_token_2|>', '<|reserved_special_token_3|>',
    '<|start_header_id|>', '<|end_header_id|>',
    '<|reserved_special_token_4|>', '<|eot_id|>',
  ];
  return k < fixed.length ? fixed[k] : `<|reserved_special_token_${k - 5}|>`;
}

function loadEncoder(ranksPath, nSpecials) {
  const lines = fs.readFileSync(ranksPath, 'latin1').split('\n').filter(Boolean);
  const tokens = new Array(lines.length);
  for (const line of lines) {
    const [b64, rank] = line.split(' ');
    tokens[Number(rank)] = b64;
  }
  const special = {};
  for (let k = 0; k < nSpecials; k++) special[specialName(k)] = tokens.length + k;
  // js-tiktoken's compact rank format: "! OFFSET tok tok tok ..."
  const enc = new Tiktoken({ pat_str: LLAMA3_PATTERN, special_tokens: special,
                             bpe_ranks: '! 0 ' + tokens.join(' ') });
  return { enc, specials: Object.keys(special) };
}

// Length of the well-formed UTF-8 character at b[i] (Unicode Table 3-7), or 0.
function charLen(b, i) {
  const c = b[i], n = b.length - i;
  const cont = (k) => (b[i + k] & 0xc0) === 0x80;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return n >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || !cont(2)) return 0;
    const lo = c === 0xe0 ? 0xa0 : 0x80, hi = c === 0xed ? 0x9f : 0xbf;
    return b[i + 1] >= lo && b[i + 1] <= hi ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || !cont(2) || !cont(3)) return 0;
    const lo = c === 0xf0 ? 0x90 : 0x80, hi = c === 0xf4 ? 0x8f : 0xbf;
    return b[i + 1] >= lo && b[i + 1] <= hi ? 4 : 0;
  }
  return 0;
}

// tiktoken's byte_pair_encode over raw bytes (for runs of invalid UTF-8).
function bytePairEncode(enc, bytes) {
  const key = (s, e) => Array.from(bytes.subarray(s, e)).join(',');
  const whole = enc.rankMap.get(key(0, bytes.length));
  if (whole !== undefined) return [whole];
  let parts = [];
  for (let i = 0; i <= bytes.length; i++) parts.push(i);
  for (;;) {
    let best = Infinity, at = -1;
    for (let i = 0; i + 2 < parts.length; i++) {
      const r = enc.rankMap.get(key(parts[i], parts[i + 2]));
      if (r !== undefined && r < best) { best = r; at = i; }
    }
    if (at < 0) break;
    parts.splice(at + 1, 1);
  }
  const out = [];
  for (let i = 0; i + 1 < parts.length; i++) out.push(enc.rankMap.get(key(parts[i], parts[i + 1])));
  return out;
}

// ignoreBOM: keep a leading U+FEFF as text (by default TextDecoder drops it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function encodeBytes(ref, bytes, allowSpecial) {
  const ids = [];
  let i = 0;
  while (i < bytes.length) {
    let j = i;
    while (j < bytes.length) { const k = charLen(bytes, j); if (!k) break; j += k; }
    if (j > i) {
      const text = utf8.decode(bytes.subarray(i, j));
      for (const id of ref.enc.encode(text, allowSpecial ? 'all' : [], [])) ids.push(id);
      i = j;
    }
    while (j < bytes.length && !charLen(bytes, j)) j++;
    if (j > i) { for (const id of bytePairEncode(ref.enc, bytes.subarray(i, j))) ids.push(id); i = j; }
  }
  return ids;
}

function main(argv) {
  let ranks = null, nSpecials = 256, allow = false, bos = null, bench = false;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ranks') ranks = argv[++i];
    else if (a === '--specials') nSpecials = Number(argv[++i]);
    else if (a === '--special') allow = true;
    else if (a === '--bos') bos = Number(argv[++i]);
    else if (a === '--bench') bench = true;
    else files.push(a);
  }
  if (!ranks || !files.length) {
    process.stderr.write('usage: tok-ref.js --ranks FILE [--specials N] [--special] [--bos ID] FILE...\n');
    process.exit(2);
  }
  const ref = loadEncoder(ranks, nSpecials);
  if (bench) {
    const bytes = fs.readFileSync(files[0]);
    const text = utf8.decode(bytes);
    ref.enc.encode('warm up', [], []);
    const t0 = process.hrtime.bigint();
    const n = ref.enc.encode(text, [], []).length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(`js-tiktoken: ${bytes.length} bytes, ${n} tokens, ${s.toFixed(3)} s, ` +
                         `${(bytes.length / 1e6 / s).toFixed(2)} MB/s\n`);
    return;
  }
  const out = [];
  for (const f of files) {
    const ids = encodeBytes(ref, fs.readFileSync(f), allow);
    if (bos !== null) ids.unshift(bos);
    out.push(ids.join(' ') + '\n');
  }
  process.stdout.write(out.join(''));
}

main(process.argv.slice(2));

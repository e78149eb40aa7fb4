#!/usr/bin/env python3
"""SentencePiece as the independent reference for bn's "spm-bpe" tokenizer
(formats/embedding.md, Gemma's kind), through Debian's sentencepiece
(spm_train, python3-sentencepiece).

  train DIR [--vocab N]   trains a small BPE model the way Gemma's is set
                          up (no dummy prefix, identity normalization,
                          spaces kept, digits split, byte fallback, ids
                          pad 0, eos 1, bos 2, unk 3, two user-defined
                          symbols) on a generated multilingual corpus;
                          writes DIR/spm.model and DIR/tokenizer.json, the
                          latter as Hugging Face's converter shapes Gemma's
                          (BPE with byte_fallback, normalizer Replace
                          " " -> U+2581, pre-tokenizer Split " ", merges
                          from the vocabulary, BOS post-processor)
  train DIR --llama2      the same with Llama 2's options instead (dummy
                          prefix; ids unk 0, bos 1, eos 2, no pad) and
                          its tokenizer.json as Hugging Face's converter
                          shapes Llama 2's (normalizer Prepend U+2581 then
                          Replace " " -> U+2581, no pre-tokenizer, decoder
                          ending in Strip of the leading space, <s>
                          post-processor)
  encode MODEL [--whole]  ids of each line of stdin (without its LF), one
                          line of decimal ids each; --whole: all of stdin
                          as one text, one line out
  random-text OUT --count N --seed S [--llama2]
                          N random lines of up to 40 pieces: ASCII, runs
                          of spaces and tabs, Unicode absent from the
                          vocabulary, U+2581, the user-defined symbols and
                          parts of them (--llama2: also <s> and </s>, which
                          must stay text)
"""
import argparse
import json
import os
import random
import subprocess
import sys

import sentencepiece as spm

WORDS = ("the quick brown fox jumps over the lazy dog ternary weights bits model embedding query passage "
         "retrieve relevant answer question hello world token merge piece byte fallback space newline "
         "ça va très bien naïve café über straße Ελληνικά γλώσσα русский язык 日本語 中文 한국어 "
         "12 345 6789 2026 1.58 3.14 <b> </b> (x) [y] {z} a-b c_d e/f").split()


USER = ("<start_of_turn>", "<end_of_turn>")


def corpus(path, lines=4000, seed=7):
    r = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            n = r.randint(3, 18)
            words = [r.choice(WORDS) for _ in range(n)]
            seps = [r.choice(["  ", "   ", "\t"]) if r.random() < 0.08 else " " for _ in range(n - 1)]
            text = words[0] + "".join(s + w for s, w in zip(seps, words[1:]))
            if r.random() < 0.1:
                text = " " + text
            f.write(text + "\n")


def extract_merges(sp):
    """Hugging Face's SentencePieceExtractor rule, from the vocabulary: every
    split of a normal piece into two normal pieces is a merge; merges rank by
    the merged piece's score (SentencePiece merges the best-scored pair),
    then by the ids of the two sides."""
    n = sp.get_piece_size()
    normal = {sp.id_to_piece(i): i for i in range(n)
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i))
              and sp.id_to_piece(i) not in USER}
    merges = []
    for piece, pid in normal.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in normal and right in normal:
                merges.append((-sp.get_score(pid), pid, normal[left], normal[right], left, right))
    merges.sort()
    return [[m[4], m[5]] for m in merges]


def train(out, vocab, llama2=False):
    os.makedirs(out, exist_ok=True)
    text = os.path.join(out, "corpus.txt")
    corpus(text)
    prefix = os.path.join(out, "spm")
    # Gemma's ids and no dummy prefix, or Llama 2's (its trainer_spec and
    # normalizer_spec: identity, extra whitespace kept, dummy prefix)
    ids = (["--add_dummy_prefix=true", "--pad_id=-1", "--unk_id=0", "--bos_id=1", "--eos_id=2"] if llama2 else
           ["--add_dummy_prefix=false", "--pad_id=0", "--eos_id=1", "--bos_id=2", "--unk_id=3", "--bos_piece=<bos>",
            "--eos_piece=<eos>"])
    subprocess.run(["spm_train", f"--input={text}", f"--model_prefix={prefix}", f"--vocab_size={vocab}",
                    "--model_type=bpe", "--byte_fallback=true", "--normalization_rule_name=identity",
                    "--remove_extra_whitespaces=false", "--split_digits=true", "--allow_whitespace_only_pieces=true",
                    "--character_coverage=0.99", "--user_defined_symbols=" + ",".join(USER), "--minloglevel=2"] + ids,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    n = sp.get_piece_size()
    vocab_map = {sp.id_to_piece(i): i for i in range(n)}
    added = []
    for i in range(n):
        p = sp.id_to_piece(i)
        if sp.is_control(i) or sp.is_unknown(i):
            added.append({"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
        elif p in USER:
            added.append({"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": False})
    bos = sp.id_to_piece(sp.bos_id())
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    decoders = [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]
    tj = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, replace]}
        if llama2 else replace,
        "pre_tokenizer": None if llama2 else {"type": "Split", "pattern": {"String": " "},
                                              "behavior": "MergedWithPrevious", "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {bos: {"id": bos, "ids": [sp.bos_id()], "tokens": [bos]}}},
        "decoder": {"type": "Sequence", "decoders": decoders +
                    ([{"type": "Strip", "content": " ", "start": 1, "stop": 0}] if llama2 else [])},
        "model": {"type": "BPE", "dropout": None, "unk_token": sp.id_to_piece(sp.unk_id()),
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                  "byte_fallback": True, "ignore_merges": False, "vocab": vocab_map,
                  "merges": extract_merges(sp)},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)


def random_text(out, count, seed, llama2):
    r = random.Random(seed)
    chars = list("abcdefghijklmnopqrstuvwxyz ABCXYZ   \t0123456789.,;!?<>/-_") \
        + list("çéïüßλγρйкя日本語中文한국✓—🫩🙂▁") \
        + ["<start_of_turn>", "<end_of_turn>", "<start_of", "the ", " quick", "brown ", "naïve", "  "]
    if llama2:
        chars += ["<s>", "</s>"]
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(count):
            f.write("".join(r.choice(chars) for _ in range(r.randint(0, 40))) + "\n")


def encode(model, whole):
    sp = spm.SentencePieceProcessor(model_file=model)
    data = sys.stdin.buffer.read().decode("utf-8")
    texts = [data] if whole else data.split("\n")[:-1] if data.endswith("\n") else data.split("\n")
    for t in texts:
        print(" ".join(str(i) for i in sp.encode(t)))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("dir")
    t.add_argument("--vocab", type=int, default=500)
    t.add_argument("--llama2", action="store_true")
    e = sub.add_parser("encode")
    e.add_argument("model")
    e.add_argument("--whole", action="store_true")
    g = sub.add_parser("random-text")
    g.add_argument("out")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--llama2", action="store_true")
    a = ap.parse_args()
    if a.cmd == "train":
        train(a.dir, a.vocab, a.llama2)
    elif a.cmd == "random-text":
        random_text(a.out, a.count, a.seed, a.llama2)
    else:
        encode(a.model, a.whole)


if __name__ == "__main__":
    main()

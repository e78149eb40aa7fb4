/* tokstream.h — token streams between bn programs (formats/bn-tokens.md,
 * bn-tokens(5)): the text form (decimal ids, one record per line) and the
 * binary form (a header naming the tokenizer, then records of u32 ids in
 * chunks). Readers detect the form from the first byte. Both directions
 * work a record, or an id, at a time, so a pipeline never waits for EOF. */
#ifndef BN_TOKSTREAM_H
#define BN_TOKSTREAM_H

#include "formats.h"

#define BN_TOKS_MAGIC "BNTOKEN" /* followed by a NUL: 8 bytes */
#define BN_TOKS_VERSION 1
#define BN_TOKS_HEADER 32
#define BN_TOKS_MORE 0x80000000u /* chunk word: more chunks follow in this record */

/* ---------------------------------------------------------------- reader */

typedef struct bn_tokr {
    int fd;
    const char *name; /* for messages */
    uint8_t *buf;
    size_t pos, len;
    int eof;
    int binary;
    uint64_t hash;    /* binary: the writer's tokenizer hash (0: not given) */
    uint32_t n_vocab; /* binary: the writer's vocabulary size (0: not given) */
    uint64_t record;  /* records completed so far (the current one is record + 1) */
    uint64_t index;   /* ids read so far in the current record */
    /* text state */
    uint64_t line, col;
    int in_record;
    /* binary state */
    uint32_t chunk_left;
    int chunk_more;
    /* called before every read of the input, which may wait: a streaming
     * consumer flushes its output there (0 to go on, -1 to stop) */
    int (*before_read)(void *ctx, bn_err *e);
    void *ctx;
} bn_tokr;

enum { BN_TOKR_EOF = 0, BN_TOKR_ID = 1, BN_TOKR_END = 2 };

/* Reads the header if the stream is binary. name is kept (not copied).
 * A failed open leaves nothing to close (bn_tokr_close is still safe). */
int bn_tokr_open(bn_tokr *r, int fd, const char *name, bn_err *e);
/* Has fn called before each later read of the input, which may wait. */
void bn_tokr_before_read(bn_tokr *r, int (*fn)(void *ctx, bn_err *e), void *ctx);
/* The next event: an id (BN_TOKR_ID, *id set), the end of a record
 * (BN_TOKR_END), the end of the stream (BN_TOKR_EOF), or -1 with a reason
 * naming the stream, the record and the position. */
int bn_tokr_next(bn_tokr *r, uint32_t *id, bn_err *e);
/* A whole record, appended to *ids (grown as needed): 1, or 0 at EOF. */
int bn_tokr_record(bn_tokr *r, uint32_t **ids, size_t *n, size_t *cap, bn_err *e);
/* The same, keeping at most max ids (*n stops growing there) but reading
 * the record to its end; *total is the record's full length. */
int bn_tokr_record_max(bn_tokr *r, uint32_t **ids, size_t *n, size_t *cap, size_t max, uint64_t *total,
                       bn_err *e);
/* 1 when the next read returns without waiting: bytes are buffered, the
 * stream has ended, or its descriptor is readable (or broken: the read
 * reports it); 0 when it would wait for the writer, as a co-process's
 * next record does while it waits for the answer to the last. */
int bn_tokr_ready(const bn_tokr *r);
/* Checks a binary stream's header against the consumer's tokenizer
 * (either side 0 means unknown and passes). */
int bn_tokr_check(const bn_tokr *r, uint64_t hash, uint32_t n_vocab, bn_err *e);
void bn_tokr_close(bn_tokr *r);

/* ---------------------------------------------------------------- writer */

typedef struct bn_tokw {
    FILE *fp;
    const char *name; /* the output's, for messages; NULL (bn_tokw_open's): "-" */
    int binary;
    int in_record;   /* ids written in the current record */
    int sep_pending; /* text: a separator is owed before the next id */
    uint32_t *pend;  /* binary: ids of the current chunk */
    size_t n_pend, cap;
} bn_tokw;

/* Binary writes the header at once. hash and n_vocab may be 0 (unknown). */
int bn_tokw_open(bn_tokw *w, FILE *fp, int binary, uint64_t hash, uint32_t n_vocab, bn_err *e);
/* Appends ids to the current record. */
int bn_tokw_put(bn_tokw *w, const uint32_t *ids, size_t n, bn_err *e);
/* Ends the current record (an empty one if nothing was put). */
int bn_tokw_end(bn_tokw *w, bn_err *e);
/* Makes every id put so far readable downstream now, even mid-record
 * (text: a trailing space so the last id is complete; binary: a chunk
 * with the more-follows bit), then flushes the FILE. */
int bn_tokw_flush(bn_tokw *w, bn_err *e);
void bn_tokw_close(bn_tokw *w); /* frees; does not close fp */

#endif

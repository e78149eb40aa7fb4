/* core.h — the lowest floor of libbn: errors, files and atomic outputs,
 * scratch buffers, hashing, the tensor type numbers and float conversions,
 * and the in-memory metadata container. Uses nothing above it. */
#ifndef BN_CORE_H
#define BN_CORE_H

#include "bn.h"

/* Sets e->msg from the format, e->code to BN_ERROR, and returns -1, so callers can
 * `return bn_fail(e, "%s: truncated", name);`. e may be NULL. */
int bn_fail(bn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with a specific bn_status code (negative), which it returns. */
int bn_fail_code(bn_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A failed write to name ("-": standard output), as every program says
 * it: "NAME: write error: <errno's reason>"; BN_E_IO. */
int bn_fail_write(bn_err *e, const char *name);

/* Public parameter structs (bn.h) begin with size_t size. bn_params_fill
 * writes the defaults (full bytes) into a caller's struct of `size` bytes,
 * its size field included; bn_params_read copies a caller's struct over
 * dst, which holds the defaults, so fields an older caller lacks keep
 * them (BN_E_INVALID, naming `what`, when size was never set). */
void bn_params_fill(void *p, size_t size, const void *defaults, size_t full);
int bn_params_read(void *dst, size_t full, const void *src, const char *what, bn_err *e);

/* ------------------------------------------------------------------ files */

/* A read-only view of a whole file: mapped when it is a regular file,
 * otherwise (pipe, stdin) read into memory. */
typedef struct bn_map {
    const uint8_t *data;
    size_t size;
    int mapped; /* 1: munmap on close; 0: free */
} bn_map;

int bn_map_file(const char *path, bn_map *m, bn_err *e);
void bn_unmap(bn_map *m);

/* A sequential input: a file or "-" (stdin). */
typedef struct bn_in {
    FILE *fp;
    const char *name; /* for messages */
    uint64_t pos;
    int own;
} bn_in;

int bn_in_open(bn_in *in, const char *path, bn_err *e);
/* Reads exactly n bytes; a short read is an error naming the file. */
int bn_in_read(bn_in *in, void *buf, size_t n, bn_err *e);
int bn_in_skip(bn_in *in, uint64_t n, bn_err *e);
void bn_in_close(bn_in *in);

/* Named temporaries. Where the file system has no O_TMPFILE, an output
 * lives under a hidden name beside its target (".NAME.XXXXXX") until commit
 * renames it into place or abort removes it; a signal that kills the
 * process in between leaves it behind. libbn installs no signal handlers
 * and keeps no list of such names: a program that wants them removed on
 * SIGINT, SIGTERM or SIGHUP passes a hook, keeps the names it is told of,
 * and unlinks them in its own handler (the bn-* programs do, in
 * cmd/cli/signals.c). fn gets exists = 1 when path is created (just
 * before or just after: a handler may find it absent) and exists = 0 once
 * it is gone (renamed or removed); path is valid only during the call. */
typedef struct bn_temp_hook {
    void (*fn)(void *user, const char *path, int exists);
    void *user;
} bn_temp_hook;

/* An output that appears whole or not at all. For a path, data goes to an
 * unnamed temporary file in the target's directory (O_TMPFILE where the
 * file system has it, so even SIGKILL leaves nothing behind; otherwise a
 * dot-file that abort removes) and is renamed into place on commit.
 * "-" writes to stdout (the caller asked for it). */
typedef struct bn_out {
    FILE *fp;
    int fd;
    char *path;     /* target, NULL for stdout */
    char *tmp_path; /* named temporary, NULL with O_TMPFILE or stdout */
    int direct;     /* path is no regular file (/dev/null, a FIFO): written in place */
    uint64_t pos;
    int failed;
    bn_temp_hook temps; /* told of tmp_path (and commit's brief name) */
    char *iobuf;        /* fp's buffer (a regular file's), freed after fclose */
} bn_out;

/* The file path names through its symbolic links (malloc'ed); NULL with
 * errno ELOOP for a loop, ENOMEM when out of memory. */
char *bn_path_follow_links(const char *path);
/* The descriptor N when path names one of this process's open ones
 * (/dev/stdout, /dev/fd/N, /proc/self/fd/N, also through links), else -1:
 * bn_out_open writes into it in place. */
int bn_path_descriptor(const char *path);
/* temps may be NULL (nobody is told of named temporaries). */
int bn_out_open(bn_out *o, const char *path, const bn_temp_hook *temps, bn_err *e);
int bn_out_write(bn_out *o, const void *buf, size_t n, bn_err *e);
int bn_out_pad(bn_out *o, size_t alignment, bn_err *e);
int bn_out_commit(bn_out *o, bn_err *e);
void bn_out_abort(bn_out *o);
/* Nonzero if the path names a terminal (binary output is refused there). */
int bn_out_is_tty(const char *path);
/* Nonzero when a read of fd returns without waiting: data, the end, or an
 * error (the read reports it); 0 while it would wait for its writer. */
int bn_fd_ready(int fd);
/* C escapes for text that must stay on one line (escape.c): line breaks
 * always (\n, \r); BN_ESC_BACKSLASH doubles backslashes (printf '%b'
 * restores the text), BN_ESC_CONTROLS shows every other control byte
 * (\t, \xNN). */
enum { BN_ESC_BACKSLASH = 1, BN_ESC_CONTROLS = 2 };
/* b[0..n) escaped to f: 0, or EOF when a write failed. */
int bn_fput_escaped(const uint8_t *b, size_t n, unsigned flags, FILE *f);
/* s escaped into out (n bytes, NUL-terminated, cut before an escape that
 * does not fit); returns out. */
const char *bn_escape(const char *s, unsigned flags, char *out, size_t n);

/* UTF-8 (utf8.c). The length of the well-formed character at p (Unicode
 * Table 3-7: no overlong forms, no surrogates, at most U+10FFFF; n >= 1
 * bytes there), 0 if none. */
size_t bn_utf8_char(const uint8_t *p, size_t n);
/* Whether text[0..n) is all well-formed characters. */
int bn_utf8_valid(const char *text, size_t n);
/* text[0..n) as a NUL-terminated string of valid UTF-8 for JSON: every
 * byte that starts no character (and NUL) becomes U+FFFD. malloc'ed; NULL
 * when out of memory. */
char *bn_utf8_clean(const char *text, size_t n);

/* One transparent huge page (x86-64 and arm64 with 4 KiB base pages): the
 * unit bn aligns and sizes memory and writes to for huge-page backing. */
#define BN_HUGE_PAGE ((size_t)2 << 20)

/* A scratch buffer of at least need bytes: p itself while *cap suffices,
 * else a fresh allocation (contents not kept; p is freed). NULL when out of
 * memory, with p freed and *cap reset, so the caller just reports it. */
void *bn_scratch(void *p, size_t *cap, size_t need);

/* Seconds on the monotonic clock (only differences mean anything): the
 * generation statistics and prompt lookup's pacing. */
double bn_seconds(void);

/* XXH3-64 of a buffer (the bn format's checksum). */
uint64_t bn_hash(const void *data, size_t n);

/* XXH3-64 of a whole file, read in bounded chunks. */
int bn_hash_file(const char *path, uint64_t *out, bn_err *e);

/* A run over steps (tensors) told to an optional bn_progress_fn (bn.h):
 * bn_steps_at before each step, bn_steps_end once the run is over,
 * whatever its outcome (later calls do nothing), so a progress display is
 * cleared; but for a run the callback cancelled, which it knows is over
 * (bn.h). */
typedef struct bn_steps {
    bn_progress_fn fn; /* NULL: nobody listens */
    void *user;
    size_t total;
    int ended;
} bn_steps;

/* Before step i; fails with BN_E_CANCELLED ("NAME: cancelled") when the
 * callback asks to stop. */
int bn_steps_at(bn_steps *s, size_t i, const char *what, const char *name, bn_err *e);
void bn_steps_end(bn_steps *s);

/* ---------------------------------------------------------- tensor types */

/* Element/storage types of the bn model format. Numbers are part of the file
 * format (formats/bn-model.md); gaps are reserved. Types from 16 on are
 * kernel-packed layouts added by bn-pack. */
typedef enum bn_type {
    BN_F32 = 0,
    BN_F16 = 1,
    BN_BF16 = 2,
    BN_I8 = 3,  /* int8 rows, then one f32 scale per row: x = q * scale[row] */
    BN_T2 = 4,  /* ternary: 2-bit codes (w+1), 4 per byte, low bits first,
                   rows padded to whole bytes, then the f32 tensor scale */
    BN_I32 = 5,
    BN_U8 = 6,
    BN_Q6 = 7,  /* 6-bit blocks of 32 with f16 scales, in groups of 128
                   columns (104 bytes): heads and embeddings (head_layout.h) */
    BN_Q4 = 8,  /* 4-bit blocks of 32 with f16 scales, in groups of 128
                   columns (72 bytes): heads and embeddings (head_layout.h) */
    BN_Q5 = 9,  /* 5-bit blocks of 32 with f16 scales, in groups of 128
                   columns (88 bytes): heads and embeddings (head_layout.h) */
    BN_TYPE_COUNT_BASE
} bn_type;

/* Scalar conversions. */
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);
float bn_bf16_to_f32(uint16_t h);
uint16_t bn_f32_to_bf16(float f); /* round to nearest even */

/* n f16 values to f32: bn_f16_to_f32's bits, with F16C where the CPU has it. */
void bn_f16_row_to_f32(const uint16_t *s, float *dst, size_t n);
/* Converts n elements of a float type (F32/F16/BF16) to f32. */
int bn_to_f32(uint32_t type, const void *src, float *dst, size_t n);

/* -------------------------------------------------------------- metadata */

/* Typed key/value metadata (the bn format's, also used in memory for every
 * source format). Value types are file-format numbers. */
typedef enum bn_vtype {
    BN_V_U32 = 1,
    BN_V_I32 = 2,
    BN_V_U64 = 3,
    BN_V_I64 = 4,
    BN_V_F32 = 5,
    BN_V_F64 = 6,
    BN_V_BOOL = 7,
    BN_V_STR = 8,   /* UTF-8 text */
    BN_V_BYTES = 9, /* raw bytes */
    BN_V_ARR = 10,  /* array of one fixed-size scalar type */
    BN_V_STRARR = 11, /* array of byte strings (e.g. token pieces) */
    BN_V_SECTION = 12 /* a nested metadata list, zlib-compressed on disk */
} bn_vtype;

struct bn_meta;

typedef struct bn_kv {
    char *key;
    uint32_t type;
    uint32_t elem_type;   /* BN_V_ARR: the element's scalar type */
    uint64_t count;       /* ARR/STRARR: elements; STR/BYTES: bytes */
    void *data;           /* scalar: 8 bytes (u64/i64/f64 widened); STR/BYTES/ARR: payload */
    uint64_t *offsets;    /* STRARR: count+1 offsets into data */
    struct bn_meta *sub;  /* SECTION */
} bn_kv;

typedef struct bn_meta {
    bn_kv *kv;
    size_t n, cap;
} bn_meta;

void bn_meta_free(bn_meta *m);
const bn_kv *bn_meta_get(const bn_meta *m, const char *key);
int bn_meta_set_u32(bn_meta *m, const char *key, uint32_t v);
int bn_meta_set_i32(bn_meta *m, const char *key, int32_t v);
int bn_meta_set_u64(bn_meta *m, const char *key, uint64_t v);
int bn_meta_set_f32(bn_meta *m, const char *key, float v);
int bn_meta_set_bool(bn_meta *m, const char *key, int v);
int bn_meta_set_str(bn_meta *m, const char *key, const char *v);
int bn_meta_set_strn(bn_meta *m, const char *key, const char *v, size_t n);
int bn_meta_set_bytes(bn_meta *m, const char *key, const void *v, size_t n);
int bn_meta_set_arr(bn_meta *m, const char *key, uint32_t elem_type, const void *v, uint64_t count);
/* Takes ownership of data (count strings, offsets[count+1]). */
int bn_meta_set_strarr_owned(bn_meta *m, const char *key, char *data, uint64_t *offsets, uint64_t count);
/* Takes ownership of sub. */
int bn_meta_set_section(bn_meta *m, const char *key, bn_meta *sub);
int bn_meta_copy(bn_meta *dst, const bn_meta *src); /* appends deep copies */
int bn_meta_remove(bn_meta *m, const char *key);
/* Appends one string to the string array at key (created if absent). */
int bn_meta_append_str(bn_meta *m, const char *key, const char *str);

/* Typed getters: -1 if missing or of the wrong type (integers convert between
 * widths when the value fits). */
int bn_meta_u64(const bn_meta *m, const char *key, uint64_t *out);
int bn_meta_u32(const bn_meta *m, const char *key, uint32_t *out);
int bn_meta_i64(const bn_meta *m, const char *key, int64_t *out);
int bn_meta_f64(const bn_meta *m, const char *key, double *out);
int bn_meta_bool(const bn_meta *m, const char *key, int *out);
const char *bn_meta_str(const bn_meta *m, const char *key); /* NUL-terminated copy kept in kv */
const bn_meta *bn_meta_section(const bn_meta *m, const char *key);
/* A value of any type by its number (for decoders): scalars come widened to
 * 8 bytes (u64/i64/f64); a blob (STR, BYTES) is n bytes, kept
 * NUL-terminated. */
int bn_meta_set_scalar(bn_meta *m, const char *key, uint32_t type, const void *v8);
int bn_meta_set_blob(bn_meta *m, const char *key, uint32_t type, const void *v, size_t n);
/* Bytes of one element of a scalar value type (BN_V_U32 ... BN_V_BOOL); 0 otherwise. */
size_t bn_meta_scalar_width(uint32_t t);

#endif

/* http.c — bn-serve's HTTP side over libmicrohttpd: a thread per
 * connection (it may wait for its answer while the engine works), the
 * routes, the API key, the body limit, server-sent events for streamed
 * answers, one log line per request. A client that goes away cancels its
 * request: a waiting thread looks at its socket between waits. */
#include "serve.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* CONN_MEMORY: libmicrohttpd's pool a connection reads its request
 * headers into. Its default, 32 KiB, refused headers over about 16 KiB,
 * which a browser's cookies for localhost can reach (and 0.9.75 answered
 * those between 16 and 32 KiB with a doubled, malformed 431); 64 KiB
 * takes headers to about 32 KiB. The pool is cleared between a kept-alive
 * connection's requests, so each such connection holds all of it: 32 MiB
 * at MAX_CONNECTIONS. */
enum { MAX_CONNECTIONS = 512, WAIT_MS = 200, CONN_MEMORY = 64 << 10 };

struct srv_http {
    struct MHD_Daemon *d;
    srv_http_opts o;
    pthread_mutex_t mu;
    srv_engine *g; /* NULL until ready */
    const srv_model_info *mi;
    size_t active;
    int draining; /* stopping: new requests get 503 and every reply closes its connection */
    char id_base[17]; /* this process's part of the answers' ids, random */
    uint64_t next_id;
    srv_metrics mt;
};

/* One request, from its headers to the log line. */
typedef struct req {
    srv_http *h;
    srv_engine *g; /* NULL: the model is still loading */
    double t0;
    char method[16], path[128];
    char *body;
    size_t n_body;
    int too_big;
    int status, gone;
    int closing; /* the server is stopping: the reply closes the connection */
    int deferred; /* a preflight (1) or a 401 (2) of a request without a body: answered once it is in,
                     so that the connection stays open (an answer from the headers closes it) */
    uint32_t n_prompt, n_gen;
    int fd;
    const char *cors; /* Access-Control-Allow-Origin to send, or NULL */
    /* a streamed answer */
    srv_job *job;
    char id[64];
    long created;
    size_t sent;
    size_t lp_sent;   /* log probabilities sent (tokens) */
    size_t step; /* the first of job->steps not yet sent */
    int started, ended;
    double t_out; /* when stream_reader last handed bytes out */
    char *out;
    size_t n_out, off;
} req;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Has the client closed its end? POLLRDHUP says so even behind bytes it
 * sent first and nobody read (a peek at them looked alive). */
static int peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Bytes of text that end on a character boundary (a UTF-8 character the
 * engine has begun is sent once it is whole). */
static size_t complete_prefix(const char *text, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = (unsigned char)text[n - back];
        if ((c & 0xc0) == 0x80)
            continue;
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return len > back ? n - back : n;
    }
    return n;
}

/* The key, compared in time that depends on the key's length alone. */
static int key_matches(const char *key, const char *header)
{
    /* the scheme's name is case-insensitive (RFC 7235 §2.1) */
    const char *given = header && !strncasecmp(header, "Bearer ", 7) ? header + 7 : "";
    size_t nk = strlen(key), ng = strlen(given);
    unsigned diff = nk != ng;
    for (size_t i = 0; i < nk; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < ng ? given[i] : 0);
    return diff == 0;
}

/* ----------------------------------------------------------------- CORS */

/* What Access-Control-Allow-Origin says to a request from `origin`: the
 * origin itself when --allow-origin names it, "*" when it allows any,
 * NULL (no CORS headers) otherwise. */
static const char *allowed_origin(const srv_http *h, const char *origin)
{
    const char *any = NULL;
    for (size_t i = 0; origin && i < h->o.n_origins; i++) {
        if (!strcmp(h->o.origins[i], origin))
            return h->o.origins[i];
        if (!strcmp(h->o.origins[i], "*"))
            any = "*";
    }
    return any;
}

static void add_cors(struct MHD_Response *resp, const req *r)
{
    if (r->h->o.n_origins) /* the answer depends on the Origin: caches must know */
        MHD_add_response_header(resp, "Vary", "Origin");
    if (r->cors)
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors);
}

/* Whether s is a list of header names (RFC 9110 tokens, commas and
 * blanks between them), as a browser sends Access-Control-Request-Headers:
 * nothing else may be echoed into a reply's header. */
static int header_names(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~, \t", *s)))
            return 0;
    return n > 0 && n <= 1024;
}

/* A preflight's answer: the methods and the headers a page may send.
 * The headers are the ones the preflight asks for, when they are header
 * names: OpenAI's JS SDK sends X-Stainless-* headers beside Authorization
 * and Content-Type, and a browser fails the request for any name the
 * answer leaves out. Echoing beats "Authorization, *": under the Fetch
 * standard's CORS-preflight check a "*" counts only for requests without
 * credentials and never covers Authorization (which must be named), and
 * older browsers read it as a name; an echo passes every mode. Without
 * the list (or with a bad one): Authorization (the key) and Content-Type
 * (JSON), what the API needs. */
static enum MHD_Result send_preflight(struct MHD_Connection *c, req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    const char *asked = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    /* the answer depends on the Origin and on the headers asked for */
    MHD_add_response_header(resp, "Vary", "Origin, Access-Control-Request-Headers");
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            header_names(asked) ? asked : "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    r->status = MHD_HTTP_NO_CONTENT;
    return rc;
}

/* -------------------------------------------------------------- replies */

static enum MHD_Result send_body(struct MHD_Connection *c, req *r, int status, const char *type, const char *body,
                                 const char *hname, const char *hvalue)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    add_cors(resp, r);
    if (hname)
        MHD_add_response_header(resp, hname, hvalue);
    pthread_mutex_lock(&r->h->mu);
    int closing = r->closing || r->h->draining;
    pthread_mutex_unlock(&r->h->mu);
    if (closing) /* stopping: a keep-alive client goes elsewhere for its next request */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, req *r, int status, char *json)
{
    if (!json)
        return send_body(c, r, 500, "application/json",
                         "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                         "\"code\":null}}",
                         NULL, NULL);
    enum MHD_Result rc = send_body(c, r, status, "application/json", json, NULL, NULL);
    free(json);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, req *r, const srv_error *err)
{
    char *json = srv_error_json(err);
    if (!json)
        return send_json(c, r, 500, NULL);
    const char *hn = NULL, *hv = NULL;
    if (err->status == 401)
        hn = MHD_HTTP_HEADER_WWW_AUTHENTICATE, hv = "Bearer";
    else if (err->status == 503)
        hn = MHD_HTTP_HEADER_RETRY_AFTER, hv = "1";
    else if (err->status == 405)
        /* every method the resource takes (RFC 9110 15.5.6): a GET one answers HEAD too */
        hn = MHD_HTTP_HEADER_ALLOW, hv = err->code && !strcmp(err->code, "get_only") ? "GET, HEAD" : "POST";
    enum MHD_Result rc = send_body(c, r, err->status, "application/json", json, hn, hv);
    free(json);
    return rc;
}

static enum MHD_Result fail(struct MHD_Connection *c, req *r, int status, const char *type, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(struct MHD_Connection *c, req *r, int status, const char *type, const char *code,
                            const char *fmt, ...)
{
    srv_error err = {.status = status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    return send_error(c, r, &err);
}

/* ------------------------------------------------------------ streaming */

static int set_event(req *r, char *json)
{
    free(r->out);
    r->out = NULL;
    r->n_out = r->off = 0;
    if (!json)
        return -1;
    int n = asprintf(&r->out, "data: %s\n\n", json);
    free(json);
    if (n < 0) {
        r->out = NULL;
        return -1;
    }
    r->n_out = (size_t)n;
    return 0;
}

/* Where the next chunk ends (mutex held): the end of the next decoding
 * step's text past what was sent, never inside a character, so a client
 * that reads late still gets the answer piece by piece as OpenAI sends
 * it; r->sent itself when nothing new is ready. */
static size_t next_piece(req *r, const srv_job *j)
{
    size_t end = j->state == SRV_DONE ? j->n_text : complete_prefix(j->text, j->n_text);
    for (; r->step < j->n_steps; r->step++) {
        size_t mark = j->steps[r->step] < end ? j->steps[r->step] : end;
        size_t whole = complete_prefix(j->text, mark);
        if (whole > r->sent)
            return whole;
    }
    return end;
}

/* The next bytes of the event stream: a chunk per piece of new text,
 * the last with the finish reason and usage, then [DONE]. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    req *r = cls;
    srv_http *h = r->h;
    srv_job *j = r->job;
    /* libmicrohttpd closes a connection whose last bytes went out more
     * than --timeout ago as soon as this returns, so an answer still
     * queued, or reading a long prompt, sends an SSE comment (which
     * clients skip) at half that: such a request is not idle. */
    double quiet = (h->o.timeout_s ? h->o.timeout_s : 60u) / 2.0;
    if (r->off == r->n_out) {
        if (r->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int rc = 0;
        if (!r->started && j->chat) { /* the role comes first, as OpenAI sends it */
            r->started = 1;
            rc = set_event(r, srv_chunk_json(h->mi, j, r->id, r->created, NULL, 0, 0, 0, 1, 0));
        } else {
            pthread_mutex_lock(&r->g->mu);
            size_t ready;
            int keep_alive = 0;
            while ((ready = next_piece(r, j)) <= r->sent && j->state != SRV_DONE) {
                if (now() - r->t_out >= quiet) {
                    keep_alive = 1;
                    break;
                }
                srv_engine_wait(r->g, j, j->n_text, WAIT_MS);
                if (j->state != SRV_DONE && j->n_text <= r->sent && peer_closed(r->fd)) {
                    pthread_mutex_unlock(&r->g->mu);
                    r->gone = 1;
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                }
            }
            if (keep_alive) {
                free(r->out);
                r->off = 0;
                r->n_out = (r->out = strdup(": keep-alive\n\n")) ? strlen(r->out) : 0;
                rc = r->out ? 0 : -1;
            } else if (ready > r->sent) {
                size_t lp = r->lp_sent; /* the tokens whose text this piece ends */
                while (lp < j->n_lp && j->lp[lp].ready && j->lp[lp].text_start + j->lp[lp].text_len <= ready)
                    lp++;
                rc = set_event(r, srv_chunk_json(h->mi, j, r->id, r->created, j->text + r->sent, ready - r->sent,
                                                 r->lp_sent, lp, 0, 0));
                r->sent = ready;
                r->lp_sent = lp;
            } else if (j->finish == SRV_FIN_ERROR) {
                srv_error err = {.status = 500, .type = "server_error"};
                snprintf(err.msg, sizeof err.msg, "%s", j->error);
                rc = set_event(r, srv_error_json(&err));
                r->ended = 1;
            } else {
                r->n_gen = j->n_gen;
                rc = set_event(r, srv_chunk_json(h->mi, j, r->id, r->created, NULL, 0, r->lp_sent, j->n_lp, 0, 1));
                r->ended = 1;
            }
            pthread_mutex_unlock(&r->g->mu);
        }
        if (rc)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (r->ended) { /* [DONE] follows the last chunk, and the usage's when asked for */
            char *usage = NULL, *both = NULL;
            if (j->stream_usage == 1 && j->finish != SRV_FIN_ERROR &&
                !(usage = srv_usage_chunk_json(h->mi, j, r->id, r->created)))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            int n = asprintf(&both, "%.*s%s%s%sdata: [DONE]\n\n", (int)r->n_out, r->out, usage ? "data: " : "",
                             usage ? usage : "", usage ? "\n\n" : "");
            free(usage);
            if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            free(r->out);
            r->out = both;
            r->n_out = (size_t)n;
        }
    }
    size_t k = r->n_out - r->off < max ? r->n_out - r->off : max;
    memcpy(buf, r->out + r->off, k);
    r->off += k;
    r->t_out = now();
    return (ssize_t)k;
}

/* ----------------------------------------------------------- endpoints */

static enum MHD_Result generate(struct MHD_Connection *c, req *r, int chat)
{
    srv_http *h = r->h;
    srv_error err;
    srv_job *j = srv_parse_generate(h->mi, r->body ? r->body : "", r->n_body, chat, &err);
    if (!j)
        return send_error(c, r, &err);
    if (srv_engine_submit(r->g, j)) {
        srv_job_free(j);
        return fail(c, r, 503, "server_error", "server_busy",
                    "every sequence and queue place is taken (or the server is stopping); retry later");
    }
    r->n_prompt = (uint32_t)j->n_prompt; /* taken on: the log and /metrics count it (a 503 none) */
    pthread_mutex_lock(&h->mu);
    uint64_t no = ++h->next_id;
    pthread_mutex_unlock(&h->mu);
    snprintf(r->id, sizeof r->id, "%s-%s%llu", chat ? "chatcmpl" : "cmpl", h->id_base, (unsigned long long)no);
    r->created = (long)time(NULL);
    if (j->stream) {
        r->job = j; /* released when the request ends */
        r->t_out = now();
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, NULL);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        add_cors(resp, r);
        enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        r->status = 200;
        return rc;
    }
    pthread_mutex_lock(&r->g->mu);
    while (j->state != SRV_DONE) {
        srv_engine_wait(r->g, j, SIZE_MAX, WAIT_MS);
        if (j->state != SRV_DONE && peer_closed(r->fd)) {
            pthread_mutex_unlock(&r->g->mu);
            r->n_gen = srv_engine_release(r->g, j);
            r->gone = 1;
            return MHD_NO; /* nobody to answer */
        }
    }
    pthread_mutex_unlock(&r->g->mu);
    /* a finished job no longer changes */
    r->n_gen = j->n_gen;
    enum MHD_Result rc;
    if (j->finish == SRV_FIN_ERROR)
        rc = fail(c, r, 500, "server_error", NULL, "%s", j->error);
    else
        rc = send_json(c, r, 200, srv_reply_json(h->mi, j, r->id, r->created));
    srv_engine_release(r->g, j);
    return rc;
}

static enum MHD_Result embeddings(struct MHD_Connection *c, req *r)
{
    srv_http *h = r->h;
    srv_error err;
    srv_embed_job *j = srv_parse_embed(h->mi, r->body ? r->body : "", r->n_body, &err);
    if (!j)
        return send_error(c, r, &err);
    if (srv_engine_submit_embed(r->g, j)) {
        srv_embed_job_free(j);
        return fail(c, r, 503, "server_error", "server_busy",
                    "every sequence and queue place is taken (or the server is stopping); retry later");
    }
    r->n_prompt = (uint32_t)j->n_tokens;
    pthread_mutex_lock(&r->g->mu);
    while (j->state != SRV_DONE) {
        srv_engine_wait_embed(r->g, j, WAIT_MS);
        if (j->state != SRV_DONE && peer_closed(r->fd)) {
            pthread_mutex_unlock(&r->g->mu);
            srv_engine_release_embed(r->g, j);
            r->gone = 1;
            return MHD_NO;
        }
    }
    pthread_mutex_unlock(&r->g->mu);
    enum MHD_Result rc = j->failed ? fail(c, r, 500, "server_error", NULL, "%s", j->error)
                                   : send_json(c, r, 200, srv_embed_json(h->mi, j));
    srv_engine_release_embed(r->g, j);
    return rc;
}

static enum MHD_Result route(struct MHD_Connection *c, req *r)
{
    srv_http *h = r->h;
    const char *p = r->path;
    int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"), post = !strcmp(r->method, "POST");
    int ready = r->g != NULL;
    if (!strcmp(p, "/health"))
        return !get ? fail(c, r, 405, "invalid_request_error", "get_only", "%s takes GET", p)
               : ready ? send_body(c, r, 200, "application/json", "{\"status\":\"ok\"}", NULL, NULL)
                       : send_body(c, r, 503, "application/json", "{\"status\":\"loading model\"}",
                                   MHD_HTTP_HEADER_RETRY_AFTER, "1");
    /* one model by its id, as OpenAI's GET /v1/models/{model} */
    const char *id = !strncmp(p, "/v1/models/", 11) ? p + 11 : !strncmp(p, "/models/", 8) ? p + 8 : NULL;
    if (id && *id) { /* no id at all (a trailing slash) is no endpoint */
        if (!get)
            return fail(c, r, 405, "invalid_request_error", "get_only", "%s takes GET", p);
        if (!ready)
            return fail(c, r, 503, "server_error", "loading", "the model is still loading");
        if (strcmp(id, h->mi->id))
            return fail(c, r, 404, "invalid_request_error", "model_not_found",
                        "the model '%s' does not exist; this server has '%s'", id, h->mi->id);
        return send_json(c, r, 200, srv_models_json(h->mi, h->mi->created, 0));
    }
    static const char *const gets[] = {"/v1/models", "/models", "/metrics"};
    static const char *const posts[] = {"/v1/completions", "/completions", "/v1/chat/completions",
                                        "/chat/completions", "/tokenize", "/detokenize", "/v1/embeddings",
                                        "/embeddings"};
    int is_get = 0, is_post = 0;
    for (size_t i = 0; i < sizeof gets / sizeof *gets; i++)
        is_get |= !strcmp(p, gets[i]);
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++)
        is_post |= !strcmp(p, posts[i]);
    if (!is_get && !is_post)
        return fail(c, r, 404, "invalid_request_error", "not_found", "no such endpoint: %s", p);
    if ((is_get && !get) || (is_post && !post))
        return fail(c, r, 405, "invalid_request_error", is_get ? "get_only" : "post_only", "%s takes %s", p,
                    is_get ? "GET" : "POST");
    if (!ready)
        return fail(c, r, 503, "server_error", "loading", "the model is still loading");
    if (!strcmp(p, "/metrics")) {
        char *text = srv_metrics_text(&h->mt, r->g);
        if (!text)
            return send_json(c, r, 500, NULL);
        enum MHD_Result rc = send_body(c, r, 200, "text/plain; version=0.0.4", text, NULL, NULL);
        free(text);
        return rc;
    }
    if (is_get)
        return send_json(c, r, 200, srv_models_json(h->mi, h->mi->created, 1));
    srv_error err;
    char *out = NULL;
    if (!strcmp(p, "/tokenize") || !strcmp(p, "/detokenize")) {
        out = p[1] == 't' ? srv_tokenize(h->mi, r->body ? r->body : "", r->n_body, &err)
                          : srv_detokenize(h->mi, r->body ? r->body : "", r->n_body, &err);
        return out ? send_json(c, r, 200, out) : send_error(c, r, &err);
    }
    int embed = strstr(p, "embeddings") != NULL;
    if (embed && !h->mi->embed)
        return fail(c, r, 400, "invalid_request_error", "model_not_embedding",
                    "'%s' is a language model, not an embedding model (no model.pooling): %s needs one", h->mi->id, p);
    if (!embed && h->mi->embed)
        return fail(c, r, 400, "invalid_request_error", "model_not_generative",
                    "'%s' is an embedding model: it answers /v1/embeddings, not %s", h->mi->id, p);
    return embed ? embeddings(c, r) : generate(c, r, strstr(p, "chat") != NULL);
}

/* The path of a request target: an absolute-form one
 * ("http://host:port/v1/models"), which a server must accept (RFC 9112
 * 3.2.2) and a client going through a proxy sends, has its scheme and
 * authority dropped. */
static const char *target_path(const char *url)
{
    size_t skip = !strncasecmp(url, "http://", 7) ? 7 : !strncasecmp(url, "https://", 8) ? 8 : 0;
    if (!skip)
        return url;
    const char *slash = strchr(url + skip, '/');
    return slash ? slash : "/";
}

static enum MHD_Result unauthorized(struct MHD_Connection *c, req *r)
{
    return fail(c, r, 401, "authentication_error", "invalid_api_key", "a valid API key is needed (Bearer)");
}

/* The framing headers of a request, as libmicrohttpd passes them on. */
typedef struct framing {
    const char *length; /* the first Content-Length */
    int lengths_differ;
    int n_te;
    const char *te; /* the last Transfer-Encoding */
} framing;

static enum MHD_Result see_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    framing *f = cls;
    (void)kind;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->length && strcmp(f->length, value))
            f->lengths_differ = 1;
        if (!f->length)
            f->length = value;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->n_te++;
        f->te = value;
    }
    return MHD_YES;
}

/* Why the request's framing is refused (RFC 9112 §3.2, §6.1, §6.3), or
 * NULL: libmicrohttpd takes the first of two Content-Length values and a
 * request with both headers, where a proxy in front may read the other
 * one and see another request in the body (request smuggling); it waits
 * for a body in a coding it cannot read; it answers HTTP/1.1 without Host.
 * *status: 400, or 501 for a transfer coding other than chunked. The
 * headers read are left in *f. */
static const char *bad_framing(struct MHD_Connection *c, const char *version, framing *f, int *status)
{
    MHD_get_connection_values(c, MHD_HEADER_KIND, see_framing, f);
    *status = 400;
    if (f->lengths_differ)
        return "the request has Content-Length headers of different values";
    if (f->length && f->n_te)
        return "the request has both Content-Length and Transfer-Encoding";
    if (f->n_te > 1 || (f->te && strcasecmp(f->te, "chunked")))
        return *status = 501, "the only transfer coding this server reads is chunked";
    if (!strcmp(version, MHD_HTTP_VERSION_1_1) && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"))
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    srv_http *h = cls;
    req *r = *req_cls;
    if (!r) { /* the headers are in */
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->h = h;
        r->t0 = now();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", target_path(url));
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->fd = ci ? ci->connect_fd : -1;
        *req_cls = r;
        pthread_mutex_lock(&h->mu);
        h->active++;
        r->g = h->g; /* set once, when the model is ready */
        r->closing = h->draining;
        pthread_mutex_unlock(&h->mu);
        /* an allowed origin is named on every reply, this 503 too */
        r->cors = allowed_origin(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
        int bad_status;
        framing f = {0};
        const char *bad = bad_framing(c, version, &f, &bad_status);
        if (bad)
            return fail(c, r, bad_status, "invalid_request_error", bad_status == 501 ? "not_implemented" : "bad_request",
                        "%s", bad);
        /* stopping: a request on a connection kept alive is not taken on
         * (the drain is for those in flight) */
        if (r->closing)
            return fail(c, r, 503, "server_error", "server_stopping", "the server is stopping; retry elsewhere");
        const char *cl = f.length;
        int bodiless = !f.n_te && (!cl || !strtoull(cl, NULL, 10));
        if (r->cors && !strcmp(r->method, "OPTIONS")) /* a preflight carries no key */
            return bodiless ? (r->deferred = 1, MHD_YES) : send_preflight(c, r);
        if (h->o.api_key && strcmp(r->path, "/health") &&
            !key_matches(h->o.api_key, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
            return bodiless ? (r->deferred = 2, MHD_YES) : unauthorized(c, r);
        if (cl && strtoull(cl, NULL, 10) > SRV_BODY_LIMIT)
            return fail(c, r, 413, "invalid_request_error", "body_too_large",
                        "the request body is larger than %d bytes", SRV_BODY_LIMIT);
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (!r->status && !r->too_big) {
            if (r->n_body + *upload_size > SRV_BODY_LIMIT) {
                r->too_big = 1;
                free(r->body);
                r->body = NULL;
                r->n_body = 0;
            } else {
                char *b = realloc(r->body, r->n_body + *upload_size + 1);
                if (!b)
                    return MHD_NO;
                memcpy(b + r->n_body, upload, *upload_size);
                r->body = b;
                r->n_body += *upload_size;
                b[r->n_body] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->deferred)
        return r->deferred == 1 ? send_preflight(c, r) : unauthorized(c, r);
    if (r->status) /* answered from the headers */
        return MHD_YES;
    if (r->too_big)
        return fail(c, r, 413, "invalid_request_error", "body_too_large", "the request body is larger than %d bytes",
                    SRV_BODY_LIMIT);
    return route(c, r);
}

/* The method or path as it may appear in a log line, text or JSON: no
 * control characters, quotes or backslashes, and valid UTF-8 (else ASCII
 * alone). Both are the client's: libmicrohttpd takes any token as a
 * method (GE"T\ too) and decodes %XX in the path to any byte. */
static void clean_field(const char *p, char *out, size_t n)
{
    size_t k = 0;
    for (; *p && k + 1 < n; p++)
        out[k++] = (unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' ? '?' : *p;
    out[k] = 0;
    if (!bn_utf8_valid(out, k))
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)out[i] >= 0x80)
                out[i] = '?';
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    srv_http *h = cls;
    req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    if (r->job) /* a stream cut short: the log counts what was generated for it */
        r->n_gen = srv_engine_release(r->g, r->job);
    /* 499: the client went away before its answer was complete */
    int status = r->gone || (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && (!r->status || r->job)) ? 499
                 : r->status                                                                       ? r->status
                                                                                                   : 500;
    double ms = 1e3 * (now() - r->t0);
    char method[sizeof r->method], path[sizeof r->path];
    clean_field(r->method, method, sizeof method);
    clean_field(r->path, path, sizeof path);
    /* a load balancer checks /health every second or so: a line a second
     * per instance would bury the requests; a failed check is kept */
    int quiet = status == 200 && !h->o.log_health && !strcmp(r->path, "/health");
    if (!quiet && h->o.log_json)
        fprintf(stderr,
                "{\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"prompt_tokens\":%u,\"completion_tokens\":%u,"
                "\"ms\":%.1f}\n",
                method, path, status, r->n_prompt, r->n_gen, ms);
    else if (!quiet)
        fprintf(stderr, "%s: %s %s %d prompt=%u completion=%u %.1f ms\n", h->o.prog, method, path, status,
                r->n_prompt, r->n_gen, ms);
    srv_metrics_request(&h->mt, status, r->n_prompt, r->n_gen);
    free(r->body);
    free(r->out);
    free(r);
    pthread_mutex_lock(&h->mu);
    h->active--;
    pthread_mutex_unlock(&h->mu);
}

srv_http *srv_http_start(const srv_http_opts *o, unsigned *port, bn_err *e)
{
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    h->o = *o;
    pthread_mutex_init(&h->mu, NULL);
    /* ids unique across processes (restarts, instances behind one
     * balancer): 64 random bits of this process's, then a count */
    uint64_t base;
    if (getrandom(&base, sizeof base, GRND_NONBLOCK) != (ssize_t)sizeof base) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        base = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
    }
    snprintf(h->id_base, sizeof h->id_base, "%016llx", (unsigned long long)base);
    srv_metrics_init(&h->mt);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gr = getaddrinfo(o->host, ps, &hints, &ai);
    if (gr) {
        bn_fail(e, "%s: %s", o->host, gai_strerror(gr));
        free(h);
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    h->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT,
                            o->timeout_s ? o->timeout_s : 60u, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        bn_fail(e, "%s:%u: cannot listen%s%s", o->host, o->port, errno ? ": " : "", errno ? strerror(errno) : "");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : o->port;
    return h;
}

void srv_http_ready(srv_http *h, srv_engine *g, const srv_model_info *mi)
{
    pthread_mutex_lock(&h->mu);
    h->mi = mi;
    h->g = g;
    pthread_mutex_unlock(&h->mu);
}

void srv_http_quiesce(srv_http *h)
{
    pthread_mutex_lock(&h->mu);
    h->draining = 1;
    pthread_mutex_unlock(&h->mu);
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

size_t srv_http_active(srv_http *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->active;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void srv_http_stop(srv_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

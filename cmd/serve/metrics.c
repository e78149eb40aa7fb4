/* metrics.c — what /metrics reports, in Prometheus's text format:
 * requests by status, tokens in and out, the queue, busy sequences, KV
 * blocks in use and the engine's time in forward passes. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

void srv_metrics_init(srv_metrics *mt)
{
    memset(mt, 0, sizeof *mt);
    pthread_mutex_init(&mt->mu, NULL);
}

void srv_metrics_request(srv_metrics *mt, int status, uint32_t n_prompt, uint32_t n_gen)
{
    pthread_mutex_lock(&mt->mu);
    if (status >= 100 && status < 600)
        mt->by_status[status]++;
    mt->prompt_tokens += n_prompt;
    mt->completion_tokens += n_gen;
    pthread_mutex_unlock(&mt->mu);
}

char *srv_metrics_text(srv_metrics *mt, srv_engine *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp)
        return NULL;
    srv_engine_stats st = {0};
    if (g)
        srv_engine_get_stats(g, &st);
    size_t busy = st.active < st.slots ? st.active : st.slots;
    pthread_mutex_lock(&mt->mu);
    fputs("# HELP bn_serve_requests_total HTTP requests answered, by status.\n"
          "# TYPE bn_serve_requests_total counter\n", fp);
    for (int s = 100; s < 600; s++)
        if (mt->by_status[s])
            fprintf(fp, "bn_serve_requests_total{status=\"%d\"} %llu\n", s, (unsigned long long)mt->by_status[s]);
    fprintf(fp, "# HELP bn_serve_prompt_tokens_total Prompt tokens of answered requests.\n"
                "# TYPE bn_serve_prompt_tokens_total counter\n"
                "bn_serve_prompt_tokens_total %llu\n"
                "# HELP bn_serve_completion_tokens_total Tokens generated for answered requests.\n"
                "# TYPE bn_serve_completion_tokens_total counter\n"
                "bn_serve_completion_tokens_total %llu\n",
            (unsigned long long)mt->prompt_tokens, (unsigned long long)mt->completion_tokens);
    pthread_mutex_unlock(&mt->mu);
    fprintf(fp, "# HELP bn_serve_queue_length Requests waiting for a sequence.\n"
                "# TYPE bn_serve_queue_length gauge\n"
                "bn_serve_queue_length %zu\n"
                "# HELP bn_serve_slots_busy Sequences answering a request.\n"
                "# TYPE bn_serve_slots_busy gauge\n"
                "bn_serve_slots_busy %zu\n"
                "# HELP bn_serve_slots Sequences (--parallel).\n"
                "# TYPE bn_serve_slots gauge\n"
                "bn_serve_slots %zu\n"
                "# HELP bn_serve_kv_blocks_used KV cache blocks (64 positions each) in use.\n"
                "# TYPE bn_serve_kv_blocks_used gauge\n"
                "bn_serve_kv_blocks_used %u\n"
                "# HELP bn_serve_kv_blocks KV cache blocks the budget holds.\n"
                "# TYPE bn_serve_kv_blocks gauge\n"
                "bn_serve_kv_blocks %u\n"
                "# HELP bn_serve_kv_used_bytes KV cache bytes in use.\n"
                "# TYPE bn_serve_kv_used_bytes gauge\n"
                "bn_serve_kv_used_bytes %llu\n"
                "# HELP bn_serve_tokens_generated_total Tokens the engine generated (cancelled requests too).\n"
                "# TYPE bn_serve_tokens_generated_total counter\n"
                "bn_serve_tokens_generated_total %llu\n"
                "# HELP bn_serve_passes_total Forward passes of the batch.\n"
                "# TYPE bn_serve_passes_total counter\n"
                "bn_serve_passes_total %llu\n"
                "# HELP bn_serve_busy_seconds_total Seconds spent in forward passes.\n"
                "# TYPE bn_serve_busy_seconds_total counter\n"
                "bn_serve_busy_seconds_total %.6f\n"
                "# HELP bn_serve_decode_tokens_per_second Tokens generated per second of forward passes.\n"
                "# TYPE bn_serve_decode_tokens_per_second gauge\n"
                "bn_serve_decode_tokens_per_second %.3f\n",
            st.active - busy, busy, st.slots, st.kv_blocks_used, st.kv_blocks, (unsigned long long)st.kv_used_bytes,
            (unsigned long long)st.tokens_generated, (unsigned long long)st.passes, st.busy_seconds,
            st.busy_seconds > 0 ? (double)st.tokens_generated / st.busy_seconds : 0.0);
    fprintf(fp, "# HELP bn_serve_lookup_drafted_total Tokens guessed by prompt lookup or the draft model (requests with \"lookup\" or \"draft\").\n"
                "# TYPE bn_serve_lookup_drafted_total counter\n"
                "bn_serve_lookup_drafted_total %llu\n"
                "# HELP bn_serve_lookup_accepted_total Drafted tokens the model kept.\n"
                "# TYPE bn_serve_lookup_accepted_total counter\n"
                "bn_serve_lookup_accepted_total %llu\n",
            (unsigned long long)st.lookup_drafted, (unsigned long long)st.lookup_accepted);
    if (fclose(fp)) {
        free(buf);
        return NULL;
    }
    return buf;
}

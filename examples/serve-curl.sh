#!/bin/sh
# serve-curl.sh — a curl session against a running bn-serve: the model
# list, a completion, a streamed chat (server-sent events, one data: line
# per piece, data: [DONE] last) and a tokenization.
#   bn-serve -m MODEL &            # listens on http://127.0.0.1:8080/
#   examples/serve-curl.sh [URL]   # or BN_SERVE_URL; BN_API_KEY if the server asks one
set -eu
url=${1:-${BN_SERVE_URL:-http://127.0.0.1:8080}}
url=${url%/}
# with no key, "Authorization:" alone tells curl to send no such header
auth="Authorization:${BN_API_KEY:+ Bearer $BN_API_KEY}"
post() { # PATH JSON [curl options]
    p=$1 body=$2
    shift 2
    curl -fsS --max-time 120 -H "$auth" -H 'Content-Type: application/json' --data-binary "$body" "$@" "$url$p"
    echo
}

echo "== GET /v1/models"
curl -fsS --max-time 10 -H "$auth" "$url/v1/models"
echo
echo "== POST /v1/completions (greedy, 16 tokens)"
post /v1/completions '{"prompt": "It was a fine morning, and", "max_tokens": 16, "temperature": 0}'
echo "== POST /v1/chat/completions (streamed)"
post /v1/chat/completions '{"messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello."}], "max_tokens": 16, "seed": 1, "stream": true}' -N
echo "== POST /tokenize"
post /tokenize '{"content": "Hello, world", "add_special": true}'

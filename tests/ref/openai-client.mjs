// openai-client.mjs — one request to bn-serve through OpenAI's own npm
// client (the pinned `openai` package, not our code), for
// tests/serve-openai.bats.
//   node openai-client.mjs BASE_URL models
//   node openai-client.mjs BASE_URL completion|chat JSON
// BASE_URL ends in /v1; JSON holds the request's parameters (the model is
// the server's first unless JSON names one); the key is OPENAI_API_KEY.
// Prints one JSON object: text, finish_reason, usage, object and, for
// "stream": true, chunks (how many), role (the first delta's) and ids (the
// distinct chunk ids). A refusal prints {"error": {status, code, type,
// message, class}} and exits 3; any other failure exits 1.
import OpenAI from 'openai';

const [baseURL, kind, json] = process.argv.slice(2);
if (!baseURL || !['models', 'completion', 'chat'].includes(kind)) {
    process.stderr.write('usage: node openai-client.mjs BASE_URL models|completion|chat [JSON]\n');
    process.exit(2);
}
// the client insists on a key; a server without --api-key ignores it
const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || 'none', maxRetries: 0, timeout: 60000 });

async function modelIds() {
    const ids = [];
    for await (const m of client.models.list())
        ids.push(m.id);
    return ids;
}

async function generate(chat, params) {
    if (!params.model)
        params.model = (await modelIds())[0];
    const api = chat ? client.chat.completions : client.completions;
    const pieceOf = (choice) => (chat ? (choice.delta && choice.delta.content) || '' : choice.text || '');
    if (!params.stream) {
        const r = await api.create(params);
        const c = r.choices[0];
        return { text: chat ? c.message.content : c.text, finish_reason: c.finish_reason, usage: r.usage, object: r.object };
    }
    const out = { text: '', finish_reason: null, usage: null, object: null, chunks: 0, role: null, ids: [] };
    for await (const chunk of await api.create(params)) {
        out.chunks++;
        out.object = chunk.object;
        if (!out.ids.includes(chunk.id))
            out.ids.push(chunk.id);
        if (chunk.usage)
            out.usage = chunk.usage;
        for (const c of chunk.choices) {
            if (chat && out.chunks === 1)
                out.role = c.delta.role || null;
            out.text += pieceOf(c);
            if (c.finish_reason) {
                if (out.finish_reason)
                    throw new Error('two chunks with a finish_reason');
                out.finish_reason = c.finish_reason;
            }
        }
    }
    return out;
}

try {
    const result = kind === 'models' ? { ids: await modelIds() } : await generate(kind === 'chat', JSON.parse(json || '{}'));
    process.stdout.write(JSON.stringify(result) + '\n');
} catch (err) {
    if (!(err instanceof OpenAI.APIError) || err.status === undefined) {
        process.stderr.write(`openai-client: ${err.stack || err}\n`);
        process.exit(1);
    }
    const { status, code, type, message } = err;
    process.stdout.write(JSON.stringify({ error: { status, code, type, message, class: err.constructor.name } }) + '\n');
    process.exit(3);
}

// chat-page.mjs — runs the DOM-free part of examples/chat.html (between
// its "BEGIN chat-client" and "END chat-client" lines: the SSE parser and
// streamChat) under node, for tests/serve.bats.
//   node chat-page.mjs selftest          the parser on streams cut at every
//                                        place, streamChat over a fake fetch
//   node chat-page.mjs chat URL JSON     one streamed chat answer from a live
//                                        server: {text, finish_reason, usage, pieces}
//   node chat-page.mjs page URL          the whole page over a stand-in DOM: two
//                                        questions to URL, one to no server:
//                                        {log, sent, status, input, failed}
// Exits 1 with a message when a check fails.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const page = readFileSync(new URL('../../examples/chat.html', import.meta.url), 'utf8');
const begin = page.indexOf('// BEGIN chat-client');
const end = page.indexOf('// END chat-client');
assert.ok(begin > 0 && end > begin, 'chat.html has no BEGIN/END chat-client block');
const { sseParser, streamChat } = new Function(
    `'use strict';\n${page.slice(begin, end)}\nreturn { sseParser, streamChat };`)();

// Every way of cutting text in two (and in pieces of one character) gives
// the same events.
function parserCheck() {
    const stream = ': a comment\r\n' +
        'data: {"a":1}\r\n\r\n' +
        'event: x\nid: 3\ndata: line one\ndata: line two\n\n' +
        'data:no-space\r\r' +
        'data: caf\u00e9 \u2603 \u{1f600}\n\n' +
        'retry: 10\n\n' +
        'data\n\n' +
        'data: [DONE]\n\n' +
        'data: unfinished';
    const want = ['{"a":1}', 'line one\nline two', 'no-space', 'caf\u00e9 \u2603 \u{1f600}', '', '[DONE]'];
    const run = (pieces) => {
        const got = [];
        const p = sseParser((d) => got.push(d));
        for (const piece of pieces)
            p.feed(piece);
        p.end();
        return got;
    };
    for (let i = 0; i <= stream.length; i++)
        assert.deepEqual(run([stream.slice(0, i), stream.slice(i)]), want, `cut at ${i}`);
    assert.deepEqual(run([...stream]), want, 'one character at a time');
}

// streamChat over a fetch that answers with bytes cut at every place
// (through UTF-8 characters too), a refusal, a stream cut short, and an
// error event.
async function streamCheck() {
    const events = [
        { choices: [{ delta: { role: 'assistant' }, finish_reason: null }] },
        { choices: [{ delta: { content: 'caf\u00e9 ' }, finish_reason: null }] },
        { choices: [{ delta: { content: '\u{1f600}!' }, finish_reason: null }] },
        { choices: [{ delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
    ];
    const whole = new TextEncoder().encode(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n');
    let asked = null;
    const answer = (status, chunks) => async (url, init) => {
        asked = { url, init };
        const body = new ReadableStream({
            start(c) {
                for (const ch of chunks)
                    c.enqueue(ch);
                c.close();
            },
        });
        return new Response(body, { status, headers: { 'Content-Type': 'text/event-stream' } });
    };
    const req = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 };
    for (let i = 0; i <= whole.length; i += 1) {
        globalThis.fetch = answer(200, [whole.slice(0, i), whole.slice(i)]);
        const pieces = [];
        const r = await streamChat('http://h:1/', 'k3y', req, (p) => pieces.push(p));
        assert.deepEqual(r, { text: 'caf\u00e9 \u{1f600}!', finish_reason: 'stop', usage: events[3].usage }, `cut at ${i}`);
        assert.equal(pieces.join(''), r.text);
    }
    assert.equal(asked.url, 'http://h:1/v1/chat/completions');
    assert.equal(asked.init.headers.Authorization, 'Bearer k3y');
    assert.deepEqual(JSON.parse(asked.init.body), { ...req, stream: true });
    globalThis.fetch = answer(200, [whole]);
    await streamChat('http://h:1', '', req, () => {});
    assert.equal(asked.init.headers.Authorization, undefined, 'no key, no Authorization');
    const refusal = new TextEncoder().encode('{"error":{"message":"a valid API key is needed (Bearer)"}}');
    globalThis.fetch = answer(401, [refusal]);
    await assert.rejects(streamChat('http://h:1', '', req, () => {}), { message: 'HTTP 401: a valid API key is needed (Bearer)' });
    globalThis.fetch = answer(200, [whole.slice(0, whole.length - 10)]);
    await assert.rejects(streamChat('http://h:1', '', req, () => {}), /before its end/);
    globalThis.fetch = answer(200, [new TextEncoder().encode('data: {"error":{"message":"out of KV"}}\n\ndata: [DONE]\n\n')]);
    await assert.rejects(streamChat('http://h:1', '', req, () => {}), { message: 'out of KV' });
}

// The whole page's script over a small stand-in for the DOM (elements
// with values, text, children, listeners; no storage, as in a private
// window): two questions typed and sent to a live server, then one to a
// server that is not there. Resolves to what the page showed and sent.
async function pageRun(url) {
    class El {
        constructor(id) {
            Object.assign(this, { id, value: '', text: '', children: [], listeners: {}, disabled: false,
                                  className: '', scrollTop: 0, scrollHeight: 0 });
            this.classList = { add: (c) => { this.className += ' ' + c; } };
        }
        get textContent() { return this.text; }
        set textContent(t) { this.text = t; if (t === '') this.children = []; }
        append(...kids) { this.children.push(...kids); }
        remove() { this.removed = true; }
        addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
        requestSubmit() { for (const fn of this.listeners.submit || []) fn({ preventDefault() {} }); }
    }
    const els = new Map();
    const document = {
        getElementById: (id) => els.get(id) || els.set(id, new El(id)).get(id),
        createElement: () => new El(''),
    };
    const $ = document.getElementById;
    $('stop').disabled = true;
    Object.assign($('max'), { value: '20' });
    Object.assign($('temp'), { value: '0' });
    const sent = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (u, init) => {
        sent.push(JSON.parse(init.body || 'null'));
        return realFetch(u, init);
    };
    const script = page.slice(page.indexOf('<script>') + 8, page.indexOf('</script>'));
    new Function('document', script)(document);
    const ask = async (question) => {
        $('input').value = question;
        $('ask').requestSubmit();
        assert.equal($('send').disabled, true, 'busy while answering');
        for (let i = 0; i < 600 && $('send').disabled; i++)
            await new Promise((r) => setTimeout(r, 100));
        assert.equal($('send').disabled, false, 'the answer never ended');
        return $('status').textContent;
    };
    const shown = () => $('log').children.filter((d) => !d.removed)
        .map((d) => ({ role: d.className, text: d.children[1].textContent }));
    $('url').value = url;
    const status = [await ask('Good morning.'), await ask('How is your sister?')];
    const log = shown();
    $('url').value = 'http://127.0.0.1:1';
    status.push(await ask('Anyone there?'));
    return { log, sent, status, input: $('input').value, failed: shown().at(-1) };
}

const [mode, url, json] = process.argv.slice(2);
try {
    if (mode === 'selftest') {
        parserCheck();
        await streamCheck();
        process.stdout.write('ok\n');
    } else if (mode === 'page' && url) {
        process.stdout.write(JSON.stringify(await pageRun(url)) + '\n');
    } else if (mode === 'chat' && url) {
        const pieces = [];
        const r = await streamChat(url, process.env.BN_API_KEY || '', JSON.parse(json || '{}'), (p) => pieces.push(p));
        process.stdout.write(JSON.stringify({ ...r, pieces: pieces.length }) + '\n');
    } else {
        process.stderr.write('usage: node chat-page.mjs selftest | chat URL JSON\n');
        process.exit(2);
    }
} catch (err) {
    process.stderr.write(`chat-page: ${err.stack || err}\n`);
    process.exit(1);
}

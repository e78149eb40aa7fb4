#!/usr/bin/env python3
"""chat_template.py — the independent reference for bn's chat rendering:
renders a conversation with a checkpoint's own Jinja chat template the way
transformers' apply_chat_template does (jinja2's sandbox, trim_blocks and
lstrip_blocks, loop controls, raise_exception and tojson; the tokenizer's
bos_token and eos_token), and prints the text, for bn-tokenize --special to
turn into ids (transformers tokenizes the rendered text with its added
tokens recognized and no BOS added).

  chat_template.py [--template FILE] [--no-generation-prompt] [--date DATE] DIR < CHAT

DIR holds tokenizer_config.json (chat_template, bos_token, eos_token), the
template found as transformers' tokenizer loading finds it: a
chat_template.jinja file in DIR before the config's chat_template, and of
a list of named templates the one named "default"; --template FILE takes
the template from FILE instead. CHAT is bn's chat
input form: lines 'system: ...', 'user: ...', 'assistant: ...'; a line
without a role continues the message before it, and the blanks after the
colon only separate (bn-tokenize(1)).

--falcon3 prints Falcon3-Instruct's published template (tiiuae's
tokenizer_config.json) and exits, for tests that build checkpoints with it.

strftime_now is defined as transformers defines it (the local time's
strftime), for Llama 3.2's template; --date DATE passes date_string=DATE,
as apply_chat_template's keyword arguments do.
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Falcon3-*-Instruct's chat_template as published in its tokenizer_config.json.
FALCON3_TEMPLATE = (
    "{%- if tools %}\n{{- '<|system|>\\n' }}\n{%- if messages[0]['role'] == 'system' %}\n"
    "{{- messages[0]['content'] }}\n{%- set remaining_messages = messages[1:] %}\n{%- else %}\n"
    "{%- set remaining_messages = messages %}\n{%- endif %}\n"
    "{{- 'You are a Falcon assistant skilled in function calling. You are helpful, respectful, and concise."
    "\\n\\n# Tools\\n\\nYou have access to the following functions. You MUST use them to answer questions when "
    "needed. For each function call, you MUST return a JSON object inside <tool_call></tool_call> tags.\\n\\n"
    "<tools>' + tools|tojson(indent=2) + '</tools>\\n\\n# Output Format\\n\\nYour response MUST follow this "
    "format when making function calls:\\n<tool_call>\\n[\\n  {\"name\": \"function_name\", \"arguments\": "
    "{\"arg1\": \"value1\", \"arg2\": \"value2\"}},\\n  {\"name\": \"another_function\", \"arguments\": "
    "{\"arg\": \"value\"}}\\n]\\n</tool_call>\\nIf no function calls are needed, respond normally without the "
    "tool_call tags.\\n' }}\n{%- for message in remaining_messages %}\n{%- if message['role'] == 'user' %}\n"
    "{{- '<|user|>\\n' + message['content'] + '\\n' }}\n{%- elif message['role'] == 'assistant' %}\n"
    "{%- if message.content %}\n{{- '<|assistant|>\\n' + message['content'] }}\n{%- endif %}\n"
    "{%- if message.tool_calls %}\n{{- '\\n<tool_call>\\n' }}\n{{- message.tool_calls|tojson(indent=2) }}\n"
    "{{- '\\n</tool_call>' }}\n{%- endif %}\n{{- eos_token + '\\n' }}\n{%- elif message['role'] == 'tool' %}\n"
    "{{- '<|assistant|>\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>\\n' }}\n{%- endif %}\n"
    "{%- endfor %}\n{{- '<|assistant|>\\n' if add_generation_prompt }}\n{%- else %}\n"
    "{%- for message in messages %}\n{%- if message['role'] == 'system' %}\n"
    "{{- '<|system|>\\n' + message['content'] + '\\n' }}\n{%- elif message['role'] == 'user' %}\n"
    "{{- '<|user|>\\n' + message['content'] + '\\n' }}\n{%- elif message['role'] == 'assistant' %}\n"
    "{%- if not loop.last %}\n{{- '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}\n"
    "{%- else %}\n{{- '<|assistant|>\\n' + message['content'] + eos_token }}\n{%- endif %}\n{%- endif %}\n"
    "{%- if loop.last and add_generation_prompt %}\n{{- '<|assistant|>\\n' }}\n{%- endif %}\n"
    "{%- endfor %}\n{%- endif %}")


def parse_chat(text):
    """bn's chat input form: a message runs from its role line to the next;
    the CR before the LF that ends it is not part of it (one inside a
    multi-line message is)."""
    msgs = []
    lines = text.split("\n")
    if lines[-1] == "":  # the last line's LF ends it
        lines.pop()
    for line in lines:
        for role in ("system", "user", "assistant"):
            if line[:len(role) + 1].lower() == role + ":":
                msgs.append({"role": role, "content": line[len(role) + 1:].lstrip(" \t")})
                break
        else:
            if msgs:
                msgs[-1]["content"] += "\n" + line
            elif line.strip(" \t\r"):
                sys.exit("chat_template.py: text before the first role")
    for m in msgs:
        if m["content"].endswith("\r"):
            m["content"] = m["content"][:-1]
    return msgs


def token_text(v):
    return v.get("content") if isinstance(v, dict) else v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--template")
    ap.add_argument("--no-generation-prompt", action="store_true")
    ap.add_argument("--falcon3", action="store_true")
    ap.add_argument("--date")
    a = ap.parse_args()
    if a.falcon3:
        sys.stdout.write(FALCON3_TEMPLATE)
        return
    tc = json.load(open(os.path.join(a.dir, "tokenizer_config.json"), encoding="utf-8"))
    jinja_file = os.path.join(a.dir, "chat_template.jinja")
    if a.template:
        tmpl = open(a.template, encoding="utf-8").read()
    elif os.path.exists(jinja_file):
        tmpl = open(jinja_file, encoding="utf-8").read()
    elif isinstance(tc["chat_template"], list):
        tmpl = {t["name"]: t["template"] for t in tc["chat_template"]}["default"]
    else:
        tmpl = tc["chat_template"]

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    msgs = parse_chat(sys.stdin.buffer.read().decode("utf-8"))
    extra = {"date_string": a.date} if a.date is not None else {}
    out = env.from_string(tmpl).render(messages=msgs, add_generation_prompt=not a.no_generation_prompt, **extra,
                                       bos_token=token_text(tc.get("bos_token")) or "",
                                       eos_token=token_text(tc.get("eos_token")) or "")
    sys.stdout.buffer.write(out.encode("utf-8"))


if __name__ == "__main__":
    main()

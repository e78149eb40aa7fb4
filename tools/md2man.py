#!/usr/bin/env python3
"""md2man.py — renders the small Markdown subset of formats/*.md as a man
page (roff with tbl tables), so a format's spec and its man page are one
text.  usage: md2man.py SPEC.md NAME SECTION VERSION SUMMARY > NAME.SECTION
The spec's first heading becomes the page's first paragraph; SUMMARY is the
NAME line's, VERSION the footer's ("0.2.0")."""
import re
import sys


def inline(text):
    text = text.replace('\\|', '|')  # a table cell's escaped pipe, before backslashes become \e
    text = text.replace('\\', '\\e')
    text = re.sub(r'`([^`]*)`', lambda m: '\\fB' + m.group(1) + '\\fR', text)
    text = re.sub(r'\*\*([^*]+)\*\*', r'\\fB\1\\fR', text)
    text = re.sub(r'(?<![\w*])\*([^*]+)\*(?![\w*])', r'\\fI\1\\fR', text)
    return text


def line_start(text):
    # a roff line must not start with . or '
    return '\\&' + text if text[:1] in ('.', "'") else text


def table(rows):
    out = ['.TS', 'allbox;', ' '.join(['l'] * len(rows[0])) + '.']
    for i, cells in enumerate(rows):
        cells = [inline(c.strip()) for c in cells]
        if i == 0:
            cells = ['\\fB' + c + '\\fR' for c in cells]
        out.append('\t'.join('T{\n' + line_start(c) + '\nT}' for c in cells))
    out.append('.TE')
    return out


def main():
    src, name, section, version, summary = sys.argv[1:6]
    lines = open(src, encoding='utf-8').read().split('\n')
    out = ["'\\\" t", '.TH %s %s "2026-12" "bn %s" "bn manual"' % (name.upper(), section, version)]
    out.append('.na')  # ragged right: tables of identifiers do not justify well
    title = lines[0].lstrip('# ').strip()
    out += ['.SH NAME', '%s \\- %s' % (name, inline(summary)), '.SH DESCRIPTION', inline(title) + '.']
    i, in_code, para = 1, False, False
    while i < len(lines):
        ln = lines[i]
        if ln.startswith('```'):
            out.append('.EE' if in_code else '.EX')
            in_code = not in_code
        elif in_code:
            out.append(line_start(ln.replace('\\', '\\e')))
        elif ln.startswith('## '):
            out.append('.SH ' + inline(ln[3:]).upper())
        elif ln.startswith('### '):
            out.append('.SS ' + inline(ln[4:]))
        elif ln.startswith('|'):
            rows = []
            while i < len(lines) and lines[i].startswith('|'):
                cells = re.split(r'(?<!\\)\|', lines[i].strip())[1:-1]
                if not all(re.fullmatch(r'\s*:?-+:?\s*', c) for c in cells):
                    rows.append(cells)
                i += 1
            out += table(rows)
            continue
        elif ln.startswith('- '):
            out += ['.IP \\(bu 2', line_start(inline(ln[2:]))]
        elif ln.strip() == '':
            out.append('.PP')
        elif ln.startswith('  ') and out and not out[-1].startswith('.PP'):
            out.append(line_start(inline(ln.strip())))
        else:
            out.append(line_start(inline(ln)))
        i += 1
    # characters beyond ASCII as groff's \[uXXXX] escapes, so that the page
    # needs no preconv and no locale to render
    text = re.sub(r'[^\x00-\x7f]', lambda m: '\\[u%04X]' % ord(m.group()), '\n'.join(out) + '\n')
    sys.stdout.write(text)


main()

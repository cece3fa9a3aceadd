#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn a terminal capture (tmux capture-pane -e -p) into a standalone HTML
page that looks like the terminal, for headless Chromium to screenshot.

Understands the SGR escapes tmux emits: reset, bold, dim, italic,
underline, reverse, the 8/16 colours, 256 colours (38;5;N) and true colour
(38;2;R;G;B).  Other escapes are dropped.

    ansi2html.py CAPTURE.txt PAGE.html [TITLE]
"""
import html
import re
import sys

FONT_PX = 16
LINE_PX = 20
BG, FG = "#1d1f21", "#d0d0d0"
# xterm-like palette, a little softened so it prints well
BASE16 = ["#1d1f21", "#cc6666", "#8fb35e", "#e0b050", "#6a9fd4", "#b294bb",
          "#5fb3b3", "#d0d0d0", "#707880", "#ff7b7b", "#b5e07a", "#f0d070",
          "#8cbcf0", "#d2b0e0", "#80dada", "#ffffff"]
SGR = re.compile(r"\x1b\[([0-9;]*)m")
OTHER_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][0-9A-B])")


def colour_256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    grey = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (grey, grey, grey)


class Style:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def apply(self, params):
        codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    value, i = colour_256(codes[i + 2] % 256), i + 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    value = "#%02x%02x%02x" % tuple(v % 256 for v in codes[i + 2:i + 5])
                    i += 4
                else:
                    value = None
                if c == 38:
                    self.fg = value
                else:
                    self.bg = value
            else:
                self.apply_simple(c)
            i += 1

    def apply_simple(self, c):
        simple = {0: self.reset, 1: lambda: setattr(self, "bold", True),
                  2: lambda: setattr(self, "dim", True),
                  3: lambda: setattr(self, "italic", True),
                  4: lambda: setattr(self, "underline", True),
                  7: lambda: setattr(self, "reverse", True),
                  22: lambda: (setattr(self, "bold", False), setattr(self, "dim", False)),
                  23: lambda: setattr(self, "italic", False),
                  24: lambda: setattr(self, "underline", False),
                  27: lambda: setattr(self, "reverse", False),
                  39: lambda: setattr(self, "fg", None),
                  49: lambda: setattr(self, "bg", None)}
        if c in simple:
            simple[c]()
        elif 30 <= c <= 37:
            self.fg = BASE16[c - 30]
        elif 90 <= c <= 97:
            self.fg = BASE16[c - 90 + 8]
        elif 40 <= c <= 47:
            self.bg = BASE16[c - 40]
        elif 100 <= c <= 107:
            self.bg = BASE16[c - 100 + 8]

    def css(self):
        fg, bg = self.fg, self.bg
        if self.reverse:
            fg, bg = (bg or BG), (fg or FG)
        rules = []
        if fg:
            rules.append("color:" + fg)
        if bg:
            rules.append("background:" + bg)
        if self.bold:
            rules.append("font-weight:bold")
        if self.dim:
            rules.append("opacity:.65")
        if self.italic:
            rules.append("font-style:italic")
        if self.underline:
            rules.append("text-decoration:underline")
        return ";".join(rules)


def convert(text):
    style, out = Style(), []
    for line in text.rstrip("\n").split("\n"):
        line = line.replace("\r", "")
        pos, parts = 0, []
        for m in SGR.finditer(line):
            parts.append((style.css(), OTHER_ESCAPE.sub("", line[pos:m.start()])))
            style.apply(m.group(1))
            pos = m.end()
        parts.append((style.css(), OTHER_ESCAPE.sub("", line[pos:])))
        out.append("".join(
            '<span style="%s">%s</span>' % (css, html.escape(s)) if css else html.escape(s)
            for css, s in parts if s))
    return out


def page(lines, title):
    return """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%s</title><style>
html,body{margin:0;background:%s}
pre{margin:0;padding:14px 16px;color:%s;font:%dpx/%dpx 'DejaVu Sans Mono',monospace}
</style></head><body><pre>%s</pre></body></html>
""" % (html.escape(title), BG, FG, FONT_PX, LINE_PX, "\n".join(lines))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: ansi2html.py CAPTURE.txt PAGE.html [TITLE]\n")
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as f:
        lines = convert(f.read())
    with open(argv[2], "w", encoding="utf-8") as f:
        f.write(page(lines, argv[3] if len(argv) > 3 else "terminal"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""A message as structure (title, tone, blocks), rendered deliberately in each format.

Composers (``compose.py``) build a :class:`Document` from plain data; nothing in a document is
markup. Each renderer escapes every piece of text for its format, so a name chosen in the home
(a room called ``[Tap here](http://evil.example)``, ``<script>``, ``&amp;``, ``**``) is shown as
the characters it is, never as a link, a tag, an entity or emphasis:

- ``plain``: plain text for chat and webhooks (links written out in full);
- ``markdown``: for services that render Markdown (every text escaped: backslashes for
  Markdown's punctuation, entities for ``<``, ``>`` and ``&``);
- ``email``: an HTML e-mail layout (inline styles, a button, the address written out under it so
  the plain-text part Apprise derives from it carries the link too).

A document is stored in the outbox as JSON (``to_json``/``from_json``) and rendered when it is
sent, in the format of the caregiver's service.
"""

from __future__ import annotations

from dataclasses import dataclass
import html
import re
from typing import Any, Literal

type Tone = Literal["urgent", "attention", "good", "normal"]
type Format = Literal["plain", "markdown", "email"]


@dataclass(frozen=True, slots=True)
class Span:
    """Inline text: plain, strong, or a link (``url`` is always the relay's own address)."""

    text: str
    strong: bool = False
    url: str | None = None


type Inline = str | Span
type Line = tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph. ``aside``: secondary (technical) detail, shown smaller in e-mail."""

    parts: Line
    aside: bool = False


@dataclass(frozen=True, slots=True)
class Heading:
    """A section heading."""

    text: str


@dataclass(frozen=True, slots=True)
class Items:
    """A list of several entries (one entry is a paragraph, never a one-item list)."""

    entries: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Button:
    """The one thing to do (e.g. acknowledge), with the address written out as well."""

    label: str
    url: str


type Block = Para | Heading | Items | Button


@dataclass(frozen=True, slots=True)
class Document:
    """One message: a title (subject line), how urgent it reads, and its blocks."""

    title: str
    tone: Tone
    blocks: tuple[Block, ...]
    #: The last line in small print (why the reader receives this).
    footer: str = ""

    def with_blocks(self, *more: Block) -> Document:
        """The same document with blocks added at the end."""
        return Document(self.title, self.tone, self.blocks + more, self.footer)


def para(*parts: Inline, aside: bool = False) -> Para:
    """A paragraph of inline parts."""
    return Para(tuple(parts), aside)


def strong(text: str) -> Span:
    """Text in bold."""
    return Span(text, strong=True)


def entries(lines: list[Line]) -> tuple[Block, ...]:
    """Several lines as a list; one line as a paragraph; none as nothing."""
    if not lines:
        return ()
    if len(lines) == 1:
        return (Para(lines[0]),)
    return (Items(tuple(lines)),)


# -- plain text --------------------------------------------------------------------------------


def _plain_inline(part: Inline) -> str:
    if isinstance(part, str):
        return part
    if part.url:
        return f"{part.text} ({part.url})"
    return part.text


def _plain_line(line: Line) -> str:
    return "".join(_plain_inline(part) for part in line)


def render_plain(document: Document) -> str:
    """Plain text: paragraphs, "- " lists, links written out."""
    chunks: list[str] = []
    for block in document.blocks:
        match block:
            case Para(parts):
                chunks.append(_plain_line(parts))
            case Heading(text):
                chunks.append(text)
            case Items(lines):
                chunks.append("\n".join(f"- {_plain_line(line)}" for line in lines))
            case Button(label, url):
                chunks.append(f"{label}: {url}")
    if document.footer:
        chunks.append(document.footer)
    return _join_headings(chunks, [isinstance(b, Heading) for b in document.blocks])


def _join_headings(chunks: list[str], headings: list[bool]) -> str:
    """Blank lines between blocks, but a heading sits right on top of what it heads."""
    out = ""
    for index, chunk in enumerate(chunks):
        if index:
            out += "\n" if headings[index - 1] else "\n\n"
        out += chunk
    return out


# -- Markdown ----------------------------------------------------------------------------------

#: Backslash escapes that both CommonMark and Python-Markdown (Apprise's converter) honour.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]()#])")
#: What would start a list if it began a line ("- ", "+ ", "1. ", "1) ").
_MD_LINE_START = re.compile(r"^([-+]|\d+[.)])(?=\s|$)")


def escape_markdown(text: str) -> str:
    """Text that Markdown shows as exactly these characters (no link, tag, entity, emphasis)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    return _MD_LINE_START.sub(lambda m: m[1][:-1] + "\\" + m[1][-1], text)


def _md_inline(part: Inline) -> str:
    if isinstance(part, str):
        return escape_markdown(part)
    text = escape_markdown(part.text)
    if part.url:
        return f"[{text}]({part.url})"
    return f"**{text}**" if part.strong else text


def _md_line(line: Line) -> str:
    return "".join(_md_inline(part) for part in line)


def render_markdown(document: Document) -> str:
    """Markdown for services that render it."""
    chunks: list[str] = []
    for block in document.blocks:
        match block:
            case Para(parts):
                chunks.append(_md_line(parts))
            case Heading(text):
                chunks.append(f"**{escape_markdown(text)}**")
            case Items(lines):
                chunks.append("\n".join(f"- {_md_line(line)}" for line in lines))
            case Button(label, url):
                chunks.append(f"**[{escape_markdown(label)}]({url})**")
    if document.footer:
        chunks.append(f"_{escape_markdown(document.footer)}_")
    # Blank lines everywhere: a list right under a line is no list to most Markdown renderers.
    return "\n\n".join(chunks)


# -- HTML e-mail -------------------------------------------------------------------------------

TONE_COLOURS: dict[Tone, str] = {
    "urgent": "#b42318",
    "attention": "#b54708",
    "good": "#067647",
    "normal": "#1d4ed8",
}
_FONT = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_TEXT = f"{_FONT};font-size:16px;line-height:1.5;color:#101828"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(part: Inline) -> str:
    if isinstance(part, str):
        return _h(part)
    if part.url:
        return f'<a href="{_h(part.url)}" style="color:#1d4ed8">{_h(part.text)}</a>'
    return f"<strong>{_h(part.text)}</strong>" if part.strong else _h(part.text)


def _html_line(line: Line) -> str:
    return "".join(_html_inline(part) for part in line)


def _html_block(block: Block, colour: str) -> str:
    match block:
        case Para(parts, aside):
            style = "margin:0 0 14px;" + ("font-size:14px;color:#475467" if aside else "")
            return f'<p style="{style}">{_html_line(parts)}</p>'
        case Heading(text):
            return f'<h2 style="margin:22px 0 6px;font-size:17px;color:{colour}">{_h(text)}</h2>'
        case Items(lines):
            items = "".join(f'<li style="margin:0 0 6px">{_html_line(line)}</li>' for line in lines)
            return f'<ul style="margin:0 0 14px;padding-left:22px">{items}</ul>'
        case Button(label, url):
            return (
                f'<p style="margin:18px 0 8px"><a href="{_h(url)}" style="display:inline-block;'
                f"background:{colour};color:#ffffff;text-decoration:none;font-weight:600;"
                f'padding:12px 22px;border-radius:6px">{_h(label)}</a></p>'
                '<p style="margin:0 0 14px;font-size:13px;color:#475467">If the button does '
                f'not work, open this address: <a href="{_h(url)}" style="color:#1d4ed8;'
                f'word-break:break-all">{_h(url)}</a></p>'
            )


def render_fragment(document: Document) -> str:
    """The blocks alone, as HTML (for a page that has its own layout and title)."""
    colour = TONE_COLOURS[document.tone]
    return "\n".join(_html_block(block, colour) for block in document.blocks)


def render_email(document: Document) -> str:
    """A complete HTML e-mail: a coloured band with the title, the blocks, the footer."""
    colour = TONE_COLOURS[document.tone]
    body = render_fragment(document)
    footer = (
        f'<tr><td style="padding:14px 28px;border-top:1px solid #eaecf0;{_FONT};font-size:13px;'
        f'color:#667085">{_h(document.footer)}</td></tr>'
        if document.footer
        else ""
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(document.title)}</title></head>\n"
        '<body style="margin:0;padding:0;background:#f2f4f7">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="background:#f2f4f7"><tr><td align="center" style="padding:24px 12px">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="max-width:600px;background:#ffffff;border-radius:10px;overflow:hidden">\n'
        f'<tr><td style="background:{colour};padding:18px 28px;{_FONT};font-size:20px;'
        f'font-weight:700;line-height:1.3;color:#ffffff">{_h(document.title)}</td></tr>\n'
        f'<tr><td style="padding:22px 28px 8px;{_TEXT}">\n{body}\n</td></tr>\n'
        f"{footer}\n</table>\n</td></tr></table>\n</body></html>\n"
    )


def render(document: Document, form: Format) -> str:
    """The body of a document in one format."""
    if form == "email":
        return render_email(document)
    if form == "markdown":
        return render_markdown(document)
    return render_plain(document)


def title_for(document: Document, form: Format) -> str:
    """The title as the service shows it (Markdown services render titles too)."""
    return escape_markdown(document.title) if form == "markdown" else document.title


# -- storage -----------------------------------------------------------------------------------


def _inline_json(part: Inline) -> Any:
    if isinstance(part, str):
        return part
    return {"text": part.text, "strong": part.strong, "url": part.url}


def _inline_from(data: Any) -> Inline:
    if isinstance(data, str):
        return data
    return Span(str(data["text"]), bool(data.get("strong")), data.get("url"))


def _block_json(block: Block) -> dict[str, Any]:
    match block:
        case Para(parts, aside):
            return {"para": [_inline_json(p) for p in parts], "aside": aside}
        case Heading(text):
            return {"heading": text}
        case Items(lines):
            return {"items": [[_inline_json(p) for p in line] for line in lines]}
        case Button(label, url):
            return {"button": label, "url": url}


def _block_from(data: dict[str, Any]) -> Block:
    if "para" in data:
        return Para(tuple(_inline_from(p) for p in data["para"]), bool(data.get("aside")))
    if "heading" in data:
        return Heading(str(data["heading"]))
    if "items" in data:
        return Items(tuple(tuple(_inline_from(p) for p in line) for line in data["items"]))
    return Button(str(data["button"]), str(data["url"]))


def to_json(document: Document) -> dict[str, Any]:
    """The document as JSON-able data (the outbox's ``content``)."""
    return {
        "title": document.title,
        "tone": document.tone,
        "blocks": [_block_json(block) for block in document.blocks],
        "footer": document.footer,
    }


def stored_document(title: str, body: str, content: dict[str, Any] | None) -> Document:
    """An outbox row's document (rows written before 0003 have only a plain-text body)."""
    if content is not None:
        return from_json(content)
    return Document(title, "normal", tuple(Para((chunk,)) for chunk in body.split("\n\n")))


def from_json(data: dict[str, Any]) -> Document:
    """A document stored with :func:`to_json`."""
    tone = data.get("tone", "normal")
    return Document(
        str(data["title"]),
        tone if tone in TONE_COLOURS else "normal",
        tuple(_block_from(block) for block in data["blocks"]),
        str(data.get("footer", "")),
    )

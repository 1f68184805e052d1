"""Content-Type for an upload that declared none, guessed from the key's extension.

A deliberate deviation from S3, which stores ``binary/octet-stream`` for such uploads:
browsers refuse to render or play media served as octet-stream in many contexts
(``<img>`` of SVG, module scripts, style sheets), and uploads from tools that send no
type are common. S3's default is kept when the extension is unknown. The guess uses
Python's built-in table plus the web media types it lacks, never the host's
/etc/mime.types, so every gateway guesses the same.
"""

from __future__ import annotations

import mimetypes

DEFAULT = "binary/octet-stream"  # what S3 stores when the client declared no type
_EXTRA = {
    ".m4a": "audio/mp4", ".m4v": "video/mp4", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".ogv": "video/ogg", ".flac": "audio/flac", ".wav": "audio/wav", ".webp": "image/webp",
    ".mkv": "video/x-matroska", ".ts": "video/mp2t", ".m4s": "video/iso.segment",
    ".mpd": "application/dash+xml", ".vtt": "text/vtt", ".woff": "font/woff",
    ".woff2": "font/woff2", ".js": "text/javascript", ".mjs": "text/javascript",
    ".ico": "image/x-icon",
}
_TABLE = mimetypes.MimeTypes()  # built-in defaults only: reads no file of the host
for _ext, _type in _EXTRA.items():
    _TABLE.add_type(_type, _ext)


def content_type_for(key: str) -> str:
    """The media type for ``key`` by its extension (case-insensitive), else S3's default."""
    name = key.rsplit("/", 1)[-1].lower()
    if "." not in name:
        return DEFAULT
    guessed, _ = _TABLE.guess_type("x" + name[name.rindex("."):], strict=False)
    return guessed or DEFAULT

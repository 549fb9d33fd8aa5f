"""Where vgen metadata lives inside each file format, written and read back in one place.

Two entries are stored: ``metadata`` (``json.dumps`` of the metadata dict) and, when
``metadata.embed_source_images`` is on, ``source_images`` (JSON ``{name: base64 PNG}``).

=========  ======================================================================
format     storage
=========  ======================================================================
mp4/mov    ``comment`` / ``vgen_source_images`` tags (``-movflags +use_metadata_tags``)
mkv/webm   ``COMMENT`` / ``VGEN_SOURCE_IMAGES`` tags
png        iTXt chunks ``vgen`` / ``vgen_source_images`` (zlib-compressed)
jpeg       COM segments ``vgen:<entry>:`` + chunk (65 KB each, concatenated in order)
webp       XMP packet, attributes ``vgen:metadata`` / ``vgen:source_images``
flac/ogg   Vorbis ``COMMENT`` (metadata only)
wav        RIFF chunks ``vgen`` / ``vgsi`` appended after the audio
zip        ``metadata.json`` / ``source_images.json`` members
sidecar    ``<file>.json``: the metadata dict (+ ``vgen_source_images`` key)
=========  ======================================================================
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from vgen.errors import ConfigError
from vgen.hashing import canonicalize

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm"}
SIDECAR_SOURCE_IMAGES_KEY = "vgen_source_images"
VIDEO_TAGS = {"metadata": "comment", "source_images": "vgen_source_images"}
PNG_KEYS = {"metadata": "vgen", "source_images": "vgen_source_images"}
WAV_CHUNKS = {"metadata": b"vgen", "source_images": b"vgsi"}
ZIP_MEMBERS = {"metadata": "metadata.json", "source_images": "source_images.json"}
XMP_NS = "https://github.com/vgen/ns/1.0/"
JPEG_COM_MAX = 65533  # a segment's length field counts itself (2 bytes) and is 16-bit


@dataclass(frozen=True)
class EmbeddedMetadata:
    """The strings to store: ``entries['metadata']`` and optionally ``entries['source_images']``."""

    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, metadata: Mapping[str, Any], *, embed_source_images: bool) -> "EmbeddedMetadata":
        meta, images = split_source_images(metadata, embed=embed_source_images)
        entries = {"metadata": json.dumps(canonicalize(meta))}
        if images:
            entries["source_images"] = json.dumps({k: base64.b64encode(v).decode("ascii") for k, v in images.items()})
        return cls(entries)

    def sidecar_document(self) -> dict:
        document = json.loads(self.entries["metadata"])
        if "source_images" in self.entries:
            document[SIDECAR_SOURCE_IMAGES_KEY] = json.loads(self.entries["source_images"])
        return document


def _png_bytes(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, (str, PurePath)):
        image = Image.open(image)
    elif not isinstance(image, Image.Image):
        from vgen.media.frames import to_uint8_frame

        image = Image.fromarray(to_uint8_frame(image, channels=(1, 3, 4)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def split_source_images(metadata: Mapping[str, Any], *, embed: bool) -> tuple[dict, dict[str, bytes]]:
    """Replace ``metadata['source_images']`` values by paths/descriptions; PNG bytes when ``embed``."""
    meta = dict(metadata)
    sources = meta.get("source_images")
    if not isinstance(sources, Mapping):
        return meta, {}
    described = {}
    for name, value in sources.items():
        if isinstance(value, (str, PurePath)):
            described[str(name)] = str(value)
        else:
            size = getattr(value, "size", None) if hasattr(value, "mode") else getattr(value, "shape", None)
            described[str(name)] = f"<in-memory image {tuple(size) if size is not None else '?'}>"
    meta["source_images"] = described
    return meta, ({str(name): _png_bytes(value) for name, value in sources.items()} if embed else {})


# ---------------------------------------------------------------- writing side


def ffmetadata_text(payload: EmbeddedMetadata) -> str:
    """An ffmpeg FFMETADATA1 document carrying the entries as global tags."""

    def escape(text: str) -> str:
        for char in "\\=;#\n":
            text = text.replace(char, "\\" + char)
        return text

    lines = [";FFMETADATA1"] + [f"{VIDEO_TAGS[k]}={escape(v)}" for k, v in payload.entries.items()]
    return "\n".join(lines) + "\n"


def png_info(payload: EmbeddedMetadata):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in payload.entries.items():
        info.add_itxt(PNG_KEYS[key], value, zip=True)
    return info


def jpeg_with_comments(jpeg: bytes, payload: EmbeddedMetadata) -> bytes:
    """Insert COM segments after the leading APPn segments of an encoded JPEG."""
    segments = []
    for key, value in payload.entries.items():
        prefix = f"vgen:{key}:".encode("ascii")
        data = value.encode("utf-8")
        step = JPEG_COM_MAX - len(prefix)
        for start in range(0, max(len(data), 1), step):
            body = prefix + data[start : start + step]
            segments.append(b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body)
    position = 2
    while jpeg[position] == 0xFF and 0xE0 <= jpeg[position + 1] <= 0xEF:
        position += 2 + struct.unpack(">H", jpeg[position + 2 : position + 4])[0]
    return jpeg[:position] + b"".join(segments) + jpeg[position:]


def webp_xmp(payload: EmbeddedMetadata) -> bytes:
    attributes = " ".join(f"vgen:{key}={quoteattr(value)}" for key, value in payload.entries.items())
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:vgen="{XMP_NS}" {attributes}/></rdf:RDF></x:xmpmeta>'
    ).encode("utf-8")


def append_wav_chunks(path: Path, payload: EmbeddedMetadata) -> None:
    """Append one RIFF chunk per entry and fix the RIFF size (soundfile's INFO comment drops >4 KB)."""
    with open(path, "r+b") as handle:
        if handle.read(4) != b"RIFF":
            raise ValueError(f"{path} is not a RIFF file")
        handle.seek(0, io.SEEK_END)
        if handle.tell() % 2:
            handle.write(b"\0")
        for key, value in payload.entries.items():
            data = value.encode("utf-8")
            handle.write(WAV_CHUNKS[key] + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b""))
        size = handle.tell()
        handle.seek(4)
        handle.write(struct.pack("<I", size - 8))


# ---------------------------------------------------------------- reading side


def _iter_png_chunks(data: bytes):
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        yield kind, data[position + 8 : position + 8 + length]
        position += 12 + length


def _png_entries(path: Path) -> dict[str, str]:
    keys = {v: k for k, v in PNG_KEYS.items()}
    entries = {}
    for kind, body in _iter_png_chunks(path.read_bytes()):
        if kind != b"iTXt":
            continue
        keyword, rest = body.split(b"\0", 1)
        if keyword.decode("latin-1") not in keys:
            continue
        compressed = rest[0] == 1
        _language, _translated, text = rest[2:].split(b"\0", 2)
        entries[keys[keyword.decode("latin-1")]] = (zlib.decompress(text) if compressed else text).decode("utf-8")
    return entries


def _jpeg_entries(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    parts: dict[str, list[bytes]] = {}
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more header segments
            break
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        body = data[position + 4 : position + 2 + length]
        if marker == 0xFE and body.startswith(b"vgen:"):
            key, chunk = body[5:].split(b":", 1)
            parts.setdefault(key.decode("ascii"), []).append(chunk)
        position += 2 + length
    return {key: b"".join(chunks).decode("utf-8") for key, chunks in parts.items()}


def _webp_entries(path: Path) -> dict[str, str]:
    from PIL import Image

    with Image.open(path) as image:
        xmp = image.info.get("xmp")
    if not xmp:
        return {}
    root = ElementTree.fromstring(xmp)
    for element in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
        return {key: element.get(f"{{{XMP_NS}}}{key}") for key in ("metadata", "source_images")
                if element.get(f"{{{XMP_NS}}}{key}") is not None}
    return {}


def _video_entries(path: Path) -> dict[str, str]:
    import av

    with av.open(str(path)) as container:
        tags = {key.lower(): value for key, value in container.metadata.items()}
    return {key: tags[tag] for key, tag in VIDEO_TAGS.items() if tag in tags}


def _wav_entries(path: Path) -> dict[str, str]:
    keys = {v: k for k, v in WAV_CHUNKS.items()}
    data = path.read_bytes()
    entries, position = {}, 12
    while position + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[position : position + 8])
        if kind in keys:
            entries[keys[kind]] = data[position + 8 : position + 8 + length].decode("utf-8")
        position += 8 + length + (length % 2)
    return entries


def _vorbis_entries(path: Path) -> dict[str, str]:
    import soundfile

    with soundfile.SoundFile(str(path)) as handle:
        comment = handle.comment
    return {"metadata": comment} if comment else {}


def _zip_entries(path: Path) -> dict[str, str]:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        return {key: archive.read(member).decode("utf-8") for key, member in ZIP_MEMBERS.items() if member in names}


EMBEDDED_READERS = {
    **{suffix: _video_entries for suffix in VIDEO_SUFFIXES},
    ".png": _png_entries,
    ".jpg": _jpeg_entries,
    ".jpeg": _jpeg_entries,
    ".webp": _webp_entries,
    ".wav": _wav_entries,
    ".flac": _vorbis_entries,
    ".ogg": _vorbis_entries,
    ".zip": _zip_entries,
}


def sidecar_path(path: Path) -> Path:
    """``clip.mp4`` -> ``clip.mp4.json``."""
    return path.with_name(path.name + ".json")


def _sidecar_entries(path: Path) -> dict[str, str]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        return {}
    images = document.pop(SIDECAR_SOURCE_IMAGES_KEY, None)
    entries = {"metadata": json.dumps(document)}
    if images is not None:
        entries["source_images"] = json.dumps(images)
    return entries


def _entries(path: str | PurePath) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    reader = EMBEDDED_READERS.get(path.suffix.lower())
    try:
        if path.suffix.lower() == ".json":
            entries = _sidecar_entries(path)
        else:
            entries = reader(path) if reader else {}
            if "metadata" not in entries and sidecar_path(path).is_file():
                entries = _sidecar_entries(sidecar_path(path))
    except (OSError, ValueError, KeyError, ElementTree.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read vgen metadata ({exc})") from exc
    if "metadata" not in entries:
        raise ConfigError(f"{path}: no vgen metadata (nothing embedded and no {sidecar_path(path).name} beside it)")
    return entries


def read_metadata(path: str | PurePath) -> dict:
    """The metadata dict stored in ``path`` (embedded) or in its ``<file>.json`` sidecar.

    Raises :class:`ConfigError` for a missing file or one without vgen metadata.
    """
    try:
        metadata = json.loads(_entries(path)["metadata"])
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: stored metadata is not JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ConfigError(f"{path}: stored metadata is not a JSON object")
    return metadata


def read_source_images(path: str | PurePath) -> dict[str, bytes]:
    """``{name: PNG bytes}`` of the source images stored with ``path`` (empty when none)."""
    raw = _entries(path).get("source_images")
    return {name: base64.b64decode(value) for name, value in json.loads(raw).items()} if raw else {}

"""Media files of task packs: recognise them by their bytes, measure them, store them content-addressed.

A file's name claims a type (``cat.png``); its first bytes say what it really is. Both must agree, and
the kind must suit the pack (images for image tasks, audio for transcription), or the file is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, UnidentifiedImageError

from sapien.errors import DomainError

# format → (kind, content type, file extension used in storage)
FORMATS = {
    "png": ("image", "image/png", "png"),
    "jpeg": ("image", "image/jpeg", "jpg"),
    "webp": ("image", "image/webp", "webp"),
    "gif": ("image", "image/gif", "gif"),
    "wav": ("audio", "audio/wav", "wav"),
    "mp3": ("audio", "audio/mpeg", "mp3"),
    "ogg": ("audio", "audio/ogg", "ogg"),
}
# What a file name claims.
EXTENSIONS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".gif": "gif",
    ".wav": "wav",
    ".mp3": "mp3",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
}
FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "gif": "GIF", "wav": "WAV", "mp3": "MP3", "ogg": "Ogg"}
# Decompression bombs: a small file that claims a gigantic canvas is refused before it is decoded.
MAX_IMAGE_PIXELS = 40_000_000
EXIF_ORIENTATION = 0x0112


class MediaRejected(DomainError):
    pass


@dataclass(frozen=True)
class MediaInfo:
    kind: str
    format: str
    content_type: str
    extension: str
    sha256: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a file show, or None if it is nothing we accept."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{max(1, round(size / 1000))} kB"


def too_large(name: str, size: int, limit: int) -> MediaRejected:
    return MediaRejected(_l("%(name)s is too large (%(size)s; the limit is %(limit)s).", name=name, size=size_text(size), limit=size_text(limit)))


def max_media_bytes() -> int:
    return int(current_app.config["MAX_MEDIA_BYTES"])


def inspect(name: str, data: bytes, expected_kind: str) -> MediaInfo:
    """Check that `data` is what its `name` claims and what the pack needs; measure it."""
    limit = max_media_bytes()
    if len(data) > limit:
        raise too_large(name, len(data), limit)
    if not data:
        raise MediaRejected(_l("%(name)s is empty.", name=name))
    claimed = EXTENSIONS.get(Path(name).suffix.lower())
    if claimed is None:
        raise MediaRejected(_l("%(name)s is not a file type we accept (PNG, JPEG, WebP, GIF, WAV, MP3 or Ogg).", name=name))
    actual = sniff(data[:16])
    if actual != claimed:
        if actual is None:
            raise MediaRejected(_l("%(name)s is not really a %(claimed)s file.", name=name, claimed=FORMAT_NAMES[claimed]))
        raise MediaRejected(
            _l("%(name)s claims to be %(claimed)s but its content is %(actual)s.", name=name,
               claimed=FORMAT_NAMES[claimed], actual=FORMAT_NAMES[actual])
        )
    kind, content_type, extension = FORMATS[actual]
    if kind != expected_kind:
        if expected_kind == "image":
            raise MediaRejected(_l("%(name)s is audio, but this pack needs images.", name=name))
        raise MediaRejected(_l("%(name)s is an image, but this pack needs audio.", name=name))
    width = height = duration_ms = None
    if kind == "image":
        width, height = _image_size(name, data)
    else:
        duration_ms = _audio_duration_ms(actual, data)
    return MediaInfo(
        kind=kind,
        format=actual,
        content_type=content_type,
        extension=extension,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=width,
        height=height,
        duration_ms=duration_ms,
    )


def too_many_pixels(name: str) -> MediaRejected:
    return MediaRejected(_l("%(name)s is too large an image: at most %(limit)s million pixels are allowed.",
                            name=name, limit=MAX_IMAGE_PIXELS // 1_000_000))


def _image_size(name: str, data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise too_many_pixels(name)
            image.verify()  # reads the whole file: a truncated or corrupt image fails here
        # Browsers show a photo turned by its EXIF orientation, so members draw boxes on the turned
        # picture: measure it the way it is shown (orientations 5-8 swap the sides). verify() leaves
        # the image unusable, hence the second open.
        with Image.open(io.BytesIO(data)) as image:
            if image.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
    except MediaRejected:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own guard, for a canvas far past ours
        raise too_many_pixels(name) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise MediaRejected(_l("%(name)s is a damaged image that cannot be read.", name=name)) from error
    if width < 1 or height < 1:
        raise MediaRejected(_l("%(name)s has no pixels.", name=name))
    return width, height


def _audio_duration_ms(fmt: str, data: bytes) -> int | None:
    """The length of an audio file, where its headers tell it cheaply; None when they do not."""
    try:
        if fmt == "wav":
            with wave.open(io.BytesIO(data)) as clip:
                return int(clip.getnframes() * 1000 / clip.getframerate())
        if fmt == "ogg":
            return _ogg_duration_ms(data)
        if fmt == "mp3":
            return _mp3_duration_ms(data)
    except (wave.Error, EOFError, struct.error, ZeroDivisionError, ValueError):
        return None
    return None


def _ogg_duration_ms(data: bytes) -> int | None:
    # The last page's granule position counts samples (48 kHz for Opus; the Vorbis header gives the rate).
    last = data.rfind(b"OggS")
    if last < 0 or last + 14 > len(data):
        return None
    granule = struct.unpack_from("<q", data, last + 6)[0]
    if data.find(b"OpusHead") >= 0:
        return int(granule * 1000 / 48_000)
    vorbis = data.find(b"\x01vorbis")
    if vorbis < 0:
        return None
    rate = struct.unpack_from("<I", data, vorbis + 12)[0]
    return int(granule * 1000 / rate) if rate else None


MP3_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]


def _mp3_duration_ms(data: bytes) -> int | None:
    # Estimate from the first frame's bitrate (exact for constant-bitrate files, which TTS tools write).
    offset = 0
    if data[:3] == b"ID3":
        size = data[6:10]
        offset = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    while offset + 4 <= len(data):
        if data[offset] == 0xFF and data[offset + 1] & 0xE0 == 0xE0:
            index = data[offset + 2] >> 4
            if 0 < index < len(MP3_BITRATES):
                return int((len(data) - offset) * 8 / MP3_BITRATES[index])
        offset += 1
    return None


def media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"])


def store(info: MediaInfo, data: bytes) -> str:
    """Write the file under the media root at its content address; returns the relative path."""
    relative = f"{info.sha256[:2]}/{info.sha256}.{info.extension}"
    target = media_root() / relative
    if target.exists():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return relative

"""Customer ids as keyed pseudonyms (`CUST-…`), and the installation's own key for them.

The key is never a default shared by every installation: with a known key, a pseudonym of a
phone-number customer id is reversed in a few tries. Unless VOC_PII_SALT is set, each data
directory gets a random 256-bit key on first use, in DATA_DIR/pii.key, readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path

_HEX_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


class PseudonymKeyError(RuntimeError):
    """The installation's pseudonym key cannot be read; the message says what to do."""


_PSEUDONYM_RE = re.compile(r"^CUST-[a-p]{16}$")  # hex digits a-f, digits 0-9 as g-p


def _keyed(value: str, salt: str) -> str:
    if not salt:
        raise ValueError("the pseudonym key is empty: pass Settings.pseudonym_key()")
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]
    # Letters only: a pseudonym must never look like a phone or card number to a later masker.
    return digest.translate(_HEX_TO_LETTERS)


def pseudonymize_customer_id(customer_id: str | None, salt: str) -> str | None:
    """A keyed hash: the same customer maps to the same token, but the raw id is never stored."""
    if not salt:
        raise ValueError("the pseudonym key is empty: pass Settings.pseudonym_key()")
    if customer_id is None or not customer_id.strip():
        return None
    value = customer_id.strip()
    if _PSEUDONYM_RE.match(value):
        return value  # exactly the form this function gives: a pseudonym from an earlier ingestion
    return f"CUST-{_keyed(value, salt)}"


def pseudonymous_id(voice_id: str, salt: str) -> str:
    """A voice id that holds personal data (a phone number used as a ticket number), keyed like a
    customer pseudonym so that re-ingesting the same row gives the same id."""
    return f"VID-{_keyed(voice_id, salt)}"


_KEYS: dict[Path, tuple[tuple[int, int], str]] = {}  # path → ((inode, mtime), key): one read per process


def load_or_create_key(path: Path) -> str:
    """The installation's pseudonym key: read from `path`, or on first use a random 256-bit key
    written there, created atomically (O_EXCL) and readable by the owner only (0600)."""
    try:
        stat = path.stat()
        cached = _KEYS.get(path)
        if cached and cached[0] == (stat.st_ino, stat.st_mtime_ns):
            return cached[1]
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = _read_key(path)
        stat = path.stat()
        _KEYS[path] = ((stat.st_ino, stat.st_mtime_ns), key)
        return key
    key = secrets.token_hex(32)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return key


def _read_key(path: Path, wait_seconds: float = 2.0) -> str:
    deadline = time.monotonic() + wait_seconds
    while True:  # another process may have created the file and not written it yet
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        if time.monotonic() > deadline:
            raise PseudonymKeyError(f"假名密钥文件 {path} 为空：若从未用它导入过数据，删除它即可生成新密钥；"
                                    "否则请从备份恢复，或设置 VOC_PII_SALT 为原密钥")
        time.sleep(0.05)

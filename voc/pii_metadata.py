"""Personal-data masking of structured values: a voice's metadata and rejected raw rows, by column
name (a value under 联系电话 is a phone number whatever its digits look like) and by content with
`voc.pii.mask_text`, numbers and JSON strings included."""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

from voc.pii import CARD, EMAIL, ID_NUMBER, MOBILE, NAME, PASSPORT, classify_number, is_id_number, mask_text

_KEY_WORDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # token, Chinese substrings, English words (a whole word), English stems (start or end of a word)
    (EMAIL, ("邮箱", "电邮", "邮件地址"), ("mail",), ("email",)),
    (MOBILE, ("电话", "手机", "座机", "固话", "联系方式", "来电号码", "联系号码", "主叫", "被叫"),
     ("tel", "cell", "msisdn"), ("phone", "mobile", "telephone", "landline")),
    (PASSPORT, ("护照", "通行证", "台胞证", "回乡证", "居留证"), (), ("passport",)),
    (ID_NUMBER, ("身份证", "证件"), ("ssn",), ("idcard", "idno", "idnumber", "identity", "nationalid")),
    (NAME, ("姓名", "联系人", "户名", "持卡人", "开户人", "收款人", "付款人", "名字", "称呼", "客户名"),
     (), ("holder",)),
    (CARD, ("卡号", "银行卡", "信用卡号", "账号", "帐号", "账户", "帐户"), ("pan", "acct", "iban"),
     ("card", "account")),
)


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Keys about personal data but not holding it: 手机银行版本, 账户类型, 证件类型, card_status, …
_NOT_PII_KEY = ("类型", "类别", "种类", "状态", "版本", "型号", "机型", "品牌", "系统", "运营商", "归属地", "是否",
                "次数", "数量", "时长", "时间", "日期", "手机银行", "网上银行", "电话银行", "电话客服")
_NOT_PII_WORDS = _word_set("type kind status state version model brand os system operator carrier count is has "
                           "flag time date duration category class level")
_ID_WORDS = _word_set("card no num number")
_NOT_PERSONAL_NAMES = _word_set("file channel host product branch department dept company org bank app device "
                                "model tag topic category event field sheet table column queue skill service "
                                "server domain display project task")
_NO_KIND = ""


def _words(key: str) -> list[str]:
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", unicodedata.normalize("NFKC", key))
    return [w for w in re.split(r"[^a-z0-9]+", key.lower()) if w]


@lru_cache(maxsize=4096)
def kind_of_key(key: str) -> str | None:
    """The token a metadata column's values are masked with whatever they look like, "" for a key
    that is about personal data without holding it (账户类型), None for an ordinary key."""
    normal = unicodedata.normalize("NFKC", key).strip().lower()
    words = _words(key)
    if any(part in normal for part in _NOT_PII_KEY) or _NOT_PII_WORDS & set(words):
        return _NO_KIND
    if "id" in words and _ID_WORDS & set(words):  # id_card, id_no, idNumber
        return ID_NUMBER
    for token, chinese, whole, stems in _KEY_WORDS:
        if any(part in normal for part in chinese) or any(w in whole for w in words):
            return token
        if any(w.startswith(s) or w.endswith(s) for w in words for s in stems):
            return token
    for word in words:  # name, customer_name, fullName, userName; not file_name or channelName
        if word.endswith("name") and not ({word[:-4]} | set(words)) & _NOT_PERSONAL_NAMES:
            return NAME
    return None


def _mask_number(value: int | float) -> int | float | str:
    """A number cell (XLSX, JSON) that is a mobile, ID or card number. Floats above 2**53 have
    lost digits (a card read as 6.22202123456789e18 no longer passes Luhn): 15 digits or more
    are masked whatever they look like."""
    if isinstance(value, float):
        if not value.is_integer() or abs(value) < 1e10:
            return value
        digits = str(int(abs(value)))
        if len(digits) >= 15:
            return ID_NUMBER if is_id_number(digits) else CARD
    else:
        digits = str(abs(value))
    return classify_number(digits) or value


def mask_value(value: object, key: str | None = None) -> object:
    """Mask a structured value (a voice's metadata, a rejected raw row): by column name (a value
    under 联系电话 is a mobile whatever its digits look like) and by content (numbers included);
    dicts, lists and strings holding JSON recursively. Keys about nothing personal keep their values."""
    return _mask_value(value, kind_of_key(key) if key is not None else None)


def _mask_value(value: object, kind: str | None) -> object:
    if isinstance(value, dict):
        masked: dict[object, object] = {}
        for k, v in value.items():
            child = kind_of_key(str(k))
            masked[mask_text(k) if isinstance(k, str) else k] = _mask_value(v, kind if child is None else child)
        return masked
    if isinstance(value, (list, tuple)):
        return [_mask_value(v, kind) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if kind:
        if isinstance(value, str) and not any(c.isalnum() for c in value):
            return value  # "", "-", "/": nothing to hide
        return kind
    if isinstance(value, (int, float)):
        return _mask_number(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, (dict, list)):
                return json.dumps(_mask_value(parsed, kind), ensure_ascii=False)
        return mask_text(value)
    return value

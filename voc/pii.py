"""Personal-data masking applied to every voice before it is stored, prompted or reported."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date

MOBILE = "[手机号]"
ID_NUMBER = "[身份证号]"
CARD = "[银行卡号]"
EMAIL = "[邮箱]"
NAME = "[姓名]"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# The most frequent Chinese surnames cover the large majority of customers; restricting name
# patterns to them keeps "王先生" masked without eating ordinary words like "这位先生".
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
    "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
    "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫"
    "寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝欧阳司马上官诸葛"
)
_SURNAME = f"[{SURNAMES}]"
_TITLES = "先生|女士|小姐|太太|老师|阿姨|叔叔|大爷|大妈|奶奶|爷爷|师傅|经理|老人家"

_CN_DIGITS = "零〇幺一二两三四五六七八九"
_CN_DIGIT_VALUE = {c: str(i) for i, c in enumerate("零一二三四五六七八九")} | {"〇": "0", "幺": "1", "两": "2"}

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PLAIN_DIGITS_RE = re.compile(r"(?<!\d)(?:\d{17}[Xx]|\d{11,19})(?!\d)")
# Numbers read out in groups: "6222 0212 3456 7890", "138-1234-5678", "+86 138 1234 5678".
_GROUPED_DIGITS_RE = re.compile(r"(?<!\d)(?:\+?86[\s-])?\d{3,6}(?:[\s-]\d{3,6}){1,5}(?:[\s-]?[Xx])?(?!\d)")
_CN_MOBILE_RE = re.compile(rf"(?<![{_CN_DIGITS}])[幺一][{_CN_DIGITS}]{{10}}(?![{_CN_DIGITS}])")
# Characters that are surnames but far more often function words before 某/先生 ("由于某种", "我和太太").
_AMBIGUOUS = "于和向时文成明全应师关常安对"
_TITLE_SURNAME = "[" + "".join(c for c in SURNAMES if c not in _AMBIGUOUS) + "]"
_NAME_PATTERNS = (
    re.compile(rf"(?:客户姓名|户名|联系人|姓名)[:：]\s?{_SURNAME}[\u4e00-\u9fa5]{{1,2}}"),
    re.compile(rf"(?:我叫|我是|本人|名字叫|叫做)\s?{_SURNAME}[\u4e00-\u9fa5]{{1,2}}(?=[，,。.！!？?\s]|$)"),
    re.compile(rf"(?<![由关对属在基鉴等至终过位处]){_SURNAME}某某?(?![种些个项天日时处位次样])"),
    re.compile(rf"{_TITLE_SURNAME}(?:{_TITLES})"),
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_id_number(candidate: str) -> bool:
    """An 18-digit resident ID: region, a real birth date and the GB 11643 check character."""
    if len(candidate) != 18 or not candidate[:17].isdigit():
        return False
    try:
        birth = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    # The check character is deliberately not required: an ID with a typing or ASR slip in it
    # is still somebody's ID and must not leak. id_check_char() is there for generators and tests.
    return 1900 <= birth.year <= 2100


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _classify_digits(raw: str) -> str | None:
    digits = re.sub(r"[\s+-]", "", raw)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 18 and is_id_number(digits):
        return ID_NUMBER
    if not digits.isdigit():
        return None
    if 16 <= len(digits) <= 19 and luhn_valid(digits):
        return CARD
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return MOBILE
    return None


def _mask_digit_run(match: re.Match[str]) -> str:
    return _classify_digits(match.group(0)) or match.group(0)


def _mask_cn_mobile(match: re.Match[str]) -> str:
    digits = "".join(_CN_DIGIT_VALUE[c] for c in match.group(0))
    return MOBILE if digits[1] in "3456789" else match.group(0)


def _keep_prefix_name(match: re.Match[str]) -> str:
    text = match.group(0)
    for prefix in ("客户姓名", "户名", "联系人", "姓名", "我叫", "我是", "本人", "名字叫", "叫做"):
        if text.startswith(prefix):
            return text[: len(prefix)] + ("：" if text[len(prefix) : len(prefix) + 1] in ":：" else "") + NAME
    return NAME


_STEPS: tuple[Callable[[str], str], ...] = (
    lambda t: _EMAIL_RE.sub(EMAIL, t),
    lambda t: _PLAIN_DIGITS_RE.sub(_mask_digit_run, t),
    lambda t: _GROUPED_DIGITS_RE.sub(_mask_digit_run, t),
    lambda t: _CN_MOBILE_RE.sub(_mask_cn_mobile, t),
    *(lambda t, p=pattern: p.sub(_keep_prefix_name, t) for pattern in _NAME_PATTERNS),
)


def mask_text(text: str) -> str:
    """Replace personal data with tokens that keep its kind, e.g. 13812345678 → [手机号]."""
    for step in _STEPS:
        text = step(text)
    return text


_HEX_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def pseudonymize_customer_id(customer_id: str | None, salt: str) -> str | None:
    """A keyed hash: the same customer maps to the same token, but the raw id is never stored."""
    if customer_id is None or not customer_id.strip():
        return None
    value = customer_id.strip()
    if value.startswith("CUST-"):
        return value  # already a pseudonym from an earlier ingestion
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]
    # Letters only: a pseudonym must never look like a phone or card number to a later masker.
    return f"CUST-{digest.translate(_HEX_TO_LETTERS)}"

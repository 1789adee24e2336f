"""Personal-data masking applied to every voice before it is stored, prompted or reported.

`mask_text` finds personal data on a normalised view of the text (NFKC, so full-width digits and
`＠` count; Chinese and capital numerals read as digits; groups split by spaces, dots or dashes
joined, also one digit apiece as ASR writes them; `(021)` and `(at)` read without brackets) and
replaces the matching spans of the *original* text with a token that keeps the kind. Everything
else in the text is left exactly as it was. `voc.pii_metadata.mask_value` does the same for
structured metadata and also masks by column name. Customer ids are pseudonymised in `voc.pseudonyms`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache

MOBILE = "[手机号]"  # mobiles and landlines with an area code
ID_NUMBER = "[身份证号]"
CARD = "[银行卡号]"
EMAIL = "[邮箱]"
NAME = "[姓名]"
PASSPORT = "[证件号]"  # passports, 港澳/台湾通行证, 台胞证, 回乡证: identity documents other than the resident ID

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# First two digits of a resident ID (province-level region), used to accept 15-digit old IDs.
_PROVINCES = frozenset(f"{n}" for n in (*range(11, 16), 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55),
                                         *range(61, 66), 71, 81, 82, 91))

# The most frequent Chinese surnames cover the large majority of customers; restricting name
# patterns to them keeps "王先生" masked without eating ordinary words like "这位先生".
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
    "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
    "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫"
    "寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
                     "司徒", "夏侯", "令狐", "端木", "独孤", "南宫", "轩辕", "申屠", "澹台", "呼延")
# Surnames that are far more often function words ("由于某种", "我和太太", "关于", "对于"): never a
# name before a title without a given name in between, and never after a label without a colon.
_AMBIGUOUS = "于和向时文成明全应师关常安对"
# Of those, the ones that are never taken as a surname at all before 先生/女士/小姐
# ("我和先生一起去", "向女士道歉", "对先生说"); 关先生, 时女士, 安小姐 are names.
_NEVER_BEFORE_TITLE = "于和向对"
_FULL_TITLES = "先生|女士|小姐"
_OTHER_TITLES = "太太|老师|阿姨|叔叔|大爷|大妈|奶奶|爷爷|师傅|经理|老人家"
# Characters that start the words following a name far more often than they end a given name:
# "我叫李四今天来的" is 李四, "江苏的李女士" is 李女士.
_STOP = ("的了是在和跟与给位个这那我你他她它们说讲来去到有没被把对向让请也都就还不又很已刚先再今昨从因"
         "为想要打办用问反投申咨致告需卡电手账银于之啊呀吗呢吧哦嗯上下次号客网人等")

_CN_NUMERALS = {"零": "0", "〇": "0", "○": "0", "幺": "1", "一": "1", "壹": "1", "二": "2", "两": "2", "贰": "2",
                "貳": "2", "兩": "2", "三": "3", "叁": "3", "參": "3", "四": "4", "肆": "4", "五": "5", "伍": "5",
                "六": "6", "陆": "6", "陸": "6", "七": "7", "柒": "7", "八": "8", "捌": "8", "九": "9", "玖": "9"}
_CN_NUMERAL_CLASS = "".join(_CN_NUMERALS)
_NUMERALS_TO_DIGITS = str.maketrans(_CN_NUMERALS)
_SEPARATORS = r"\s.\-‐‑‒–—―_·\u200b\u200c\u200d\ufeff"


@cache
def _nfkc_table() -> dict[int, str]:
    """One-character NFKC mappings (full-width digits and letters, ＠, ideographic space, …) and
    the decimal digits of every script: a length-preserving normalisation, so an index in the
    normalised text is the same index in the original."""
    table: dict[int, str] = {}
    for code in (*range(0x80, 0x10000), *range(0x1D7CE, 0x1D800)):
        char = chr(code)
        if unicodedata.category(char) == "Nd":
            table[code] = str(unicodedata.decimal(char))
            continue
        normal = unicodedata.normalize("NFKC", char)
        if normal != char and len(normal) == 1:
            table[code] = normal
    return table


def normalize_for_matching(text: str) -> str:
    """NFKC where it keeps the length, then Chinese and capital numerals as ASCII digits: what the
    masker matches on (and what tests check for leftover digit runs)."""
    return text.translate(_nfkc_table()).translate(_NUMERALS_TO_DIGITS)


# ---------------------------------------------------------------- checks

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
    if len(candidate) != 18 or not candidate[:17].isdigit() or candidate[17] not in "0123456789Xx":
        return False
    try:
        birth = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    # The check character is deliberately not required: an ID with a typing or ASR slip in it
    # is still somebody's ID and must not leak. id_check_char() is there for generators and tests.
    return 1900 <= birth.year <= 2100


def is_old_id_number(candidate: str) -> bool:
    """A 15-digit resident ID (issued before 1999): region, YYMMDD birth date (19YY), 3 digits."""
    if len(candidate) != 15 or not candidate.isdigit() or candidate[:2] not in _PROVINCES:
        return False
    try:
        date(1900 + int(candidate[6:8]), int(candidate[8:10]), int(candidate[10:12]))
    except ValueError:
        return False
    return True


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789" and digits.isdigit()


def _is_landline(digits: str) -> bool:
    """Area code (0 and 2–3 digits) and a 7–8 digit number: 010-12345678, 0755 1234567."""
    return 10 <= len(digits) <= 12 and digits[0] == "0" and digits[1] != "0" and digits.isdigit()


def classify_number(digits: str, card_context: bool = False) -> str | None:
    """The kind of a digit string (possibly ending in X), or None when it is not personal data.
    `card_context`: the text just before it names a card or account (卡号, 账号, …)."""
    if digits[-1:] in "Xx":
        return ID_NUMBER if is_id_number(digits) else None
    if not digits.isdigit():
        return None
    length = len(digits)
    if card_context and 12 <= length <= 19:
        return CARD
    if (length == 18 and is_id_number(digits)) or is_old_id_number(digits):
        return ID_NUMBER
    if 16 <= length <= 19 and luhn_valid(digits):
        return CARD
    if (_is_mobile(digits) or (length == 13 and digits.startswith("86") and _is_mobile(digits[2:]))
            or (length == 15 and digits.startswith("0086") and _is_mobile(digits[4:]))):
        return MOBILE
    return None


# ---------------------------------------------------------------- finding spans

@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    token: str


_LOCAL = "[A-Za-z0-9._%+-]+"
# a@b.cn, a ＠ b.cn, zhangsan(at)qq.com, zhang san @ qq . com (a spaced @ may follow a local part in two words)
_EMAIL_RE = re.compile(rf"(?:{_LOCAL} (?={_LOCAL} {{1,2}}@))?{_LOCAL} {{0,2}}(?:@|[(\[](?i:at)[)\]]) {{0,2}}"
                       r"[A-Za-z0-9-]+(?: ?[.。] ?[A-Za-z0-9-]+)* ?[.。] ?[A-Za-z]{2,}(?![A-Za-z])")
_AT_RE = re.compile(r"[(\[](?i:at)[)\]]")
# One run of digits of one script: a switch between ASCII and Chinese numerals splits groups, so
# "13912345678一直" is a mobile followed by a word, and "139一二三四5678" is still one number.
_GROUP = rf"(?:[0-9]+|[{_CN_NUMERAL_CLASS}]+)"
_NUMBER_RE = re.compile(rf"{_GROUP}(?:[{_SEPARATORS}]{{0,3}}{_GROUP})*(?: ?[Xx](?![A-Za-z]))?")
_GROUP_RE = re.compile(_GROUP)
_CARD_CONTEXT_RE = re.compile(r"(?:卡号|账号|帐号|账户|帐户|卡|card|account|acct)(?: ?(?:号码|号|no\.?|number))?"
                              r"[^0-9\n]{0,4}$", re.IGNORECASE)
_PHONE_CONTEXT_RE = re.compile(r"(?:电话|座机|固话|手机|联系方式|号码|来电|tel|phone)[^0-9\n]{0,4}$", re.IGNORECASE)
# 6222021234 567890123 卡: the card word after the number.
_CARD_AFTER_RE = re.compile(r"\s{0,2}(?:这张|那张|的)?(?:银行卡|信用卡|借记卡|储蓄卡|卡|账户|帐户|账号|帐号|card"
                            r"|account)", re.IGNORECASE)
_MAX_GROUPS = 7  # +86 and three groups, a card in five groups, an ID in four
_MAX_DIGITS = 19
# (021)62345678, +86 (139) 1234 5678: the brackets are read as spaces.
_BRACKETED_RE = re.compile(r"\(([0-9]{2,4})\)(?=\s{0,2}[0-9])")
# 139****5678: a partly hidden mobile still identifies its owner together with the rest of the text.
_HIDDEN_MOBILE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{1,5}[\s-]?[*xX×●•]{3,8}[\s-]?[0-9]{0,4}(?![0-9*xX×●•])")
# 护照号E12345678, 港澳通行证C12345678, 台胞证12345678: the number after the name of the document.
_DOCUMENT_RE = re.compile(r"(?:护照|通行证|台胞证|回乡证|居留证|旅行证|军官证|证件|passport)"
                          r"(?: ?(?:号码|号|编号|no\.?|number))?(?:是|为|[:：]|\s)*"
                          r"(?P<code>[A-Za-z]{0,2}[0-9]{7,10})(?![0-9A-Za-z])", re.IGNORECASE)
_TAIL_RE = re.compile(rf"(?:尾号|尾数|[后末][4四]位(?:数字|号码|数)?)(?:是|为|[:：]|\s)*"
                      rf"(?P<digits>[0-9]{{3,6}}|[{_CN_NUMERAL_CLASS}]{{3,6}})(?![0-9{_CN_NUMERAL_CLASS}])")
_PHONE_BEFORE_RE = re.compile(r"(?:手机|电话|号码|联系方式)[^，。,.]{0,2}$")


def _window_end(groups: list[tuple[int, int, str]], i: int) -> int:
    """The end of the longest run of groups from `i` that can still be one number: at most
    _MAX_GROUPS groups, or more when all but one have a single digit (1 3 9 1 2 …, +86 1 3 9 …)."""
    digits = long = 0
    for k in range(i, len(groups)):
        digits += len(groups[k][2])
        long += len(groups[k][2]) > 1
        if digits > _MAX_DIGITS or (k - i >= _MAX_GROUPS and long > 1):
            return k
    return len(groups)


def _number_spans(original: str) -> list[_Span]:
    norm = _BRACKETED_RE.sub(r" \1 ", original) if "(" in original else original
    spans: list[_Span] = []
    for match in _NUMBER_RE.finditer(norm):
        if match.end() - match.start() < 11:
            continue  # shorter than any mobile, card or ID: "一直", "5000", "2026-11-03"
        groups = [(g.start(), g.end(), g.group().translate(_NUMERALS_TO_DIGITS))
                  for g in _GROUP_RE.finditer(norm, match.start(), match.end())]
        x_end = match.end() if norm[match.end() - 1] in "Xx" else None
        i = 0
        while i < len(groups):
            start = groups[i][0]
            context = bool(_CARD_CONTEXT_RE.search(norm, max(0, start - 16), start))
            phone = bool(_PHONE_CONTEXT_RE.search(norm, max(0, start - 16), start))
            found = None
            for j in range(_window_end(groups, i), i, -1):
                digits = "".join(g[2] for g in groups[i:j])
                card = context or (len(digits) >= 12 and _CARD_AFTER_RE.match(norm, groups[j - 1][1]) is not None)
                if j == len(groups) and x_end is not None and classify_number(digits + "X") == ID_NUMBER:
                    found = _Span(start, x_end, ID_NUMBER)
                elif token := classify_number(digits, card):
                    found = _Span(start, groups[j - 1][1], token)
                elif (phone or j - i > 1) and _is_landline(digits):  # 010-12345678, 电话075512345678
                    found = _Span(start, groups[j - 1][1], MOBILE)
                if found:
                    if start > 0 and ((original[start - 1] == "+" and found.token == MOBILE)
                                      or (original[start - 1] == "(" and ")" in original[start:found.end])):
                        found = _Span(start - 1, found.end, found.token)
                    spans.append(found)
                    i = j
                    break
            else:
                i += 1
    return spans


def _tail_spans(norm: str) -> list[_Span]:
    """尾号1234 / 后四位 1234: part of a card (or, after 手机/电话, of a mobile) number."""
    spans = []
    if "尾" in norm or "位" in norm:
        for match in _TAIL_RE.finditer(norm):
            phone = _PHONE_BEFORE_RE.search(norm, max(0, match.start() - 8), match.start())
            spans.append(_Span(match.start("digits"), match.end("digits"), MOBILE if phone else CARD))
    return spans


def _surname(chars: str) -> str:
    return "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{chars}])"


_ANY_SURNAME = _surname(SURNAMES)
_PLAIN_SURNAME = _surname("".join(c for c in SURNAMES if c not in _AMBIGUOUS))
_TITLE_SURNAME = _surname("".join(c for c in SURNAMES if c not in _NEVER_BEFORE_TITLE))
_HAN = r"[\u4e00-\u9fff]"
_GIVEN = rf"(?:(?![{_STOP}]){_HAN})"
# Zhang San, ZHANG SAN, zhangsan; not a following email's local part (Zhang San zhangsan@qq.com)
_LATIN_NAME = r"[A-Za-z]{2,}(?:[ ·.\-][A-Za-z]{2,}(?![A-Za-z._%+-]*\s*[@(\[]|[A-Za-z])){0,2}(?![A-Za-z])"
_LABELS = "客户姓名|持卡人姓名|持卡人|开户人|收款人|付款人|户名|联系人|姓名|名字"
_QUOTE = "[\"'“”‘’]?"
_NAME_PATTERNS = (
    # 姓名：张三 / "姓名": "张三" / 联系人：Zhang San / 联系人赵六, 姓名 张伟 (without a colon only a surname
    # that is no function word)
    re.compile(rf"(?:{_LABELS}){_QUOTE}\s*[:：=]\s*{_QUOTE}\s*(?:为|是)?"
               rf"(?P<name>{_ANY_SURNAME}{_HAN}{_GIVEN}?|{_LATIN_NAME})"),
    re.compile(rf"(?:{_LABELS})\s*(?:为|是|叫)?\s*(?P<name>{_PLAIN_SURNAME}{_HAN}{_GIVEN}?)"),
    # 我叫李四今天…: one given-name character always, a second unless it starts the next word.
    re.compile(rf"(?:我叫|名字叫|名字是|叫做|本人姓名|我的名字)\s?(?:是)?(?P<name>{_ANY_SURNAME}{_HAN}{_GIVEN}?)"),
    re.compile(rf"(?:我是|本人)\s?(?P<name>{_PLAIN_SURNAME}{_HAN}{{1,2}})(?=[，,。.！!？?；;\s]|$)"),
    # 客户王某某, 欧阳某
    re.compile(rf"(?<![由关对属在基鉴等至终过位处])(?P<name>{_ANY_SURNAME}某某?)(?![种些个项天日时处位次样])"),
    # 张先生, 关女士, 欧阳娜娜女士, 王经理
    re.compile(rf"(?P<name>{_PLAIN_SURNAME}{_GIVEN}{{1,2}}(?:{_FULL_TITLES}))"),
    re.compile(rf"(?P<name>{_TITLE_SURNAME}(?:{_FULL_TITLES}))"),
    re.compile(rf"(?P<name>{_PLAIN_SURNAME}(?:{_OTHER_TITLES}))"),
)


_TITLE_HINTS = tuple(f"{_FULL_TITLES}|{_OTHER_TITLES}".split("|"))


def _name_spans(norm: str) -> list[_Span]:
    patterns = list(_NAME_PATTERNS[:4])  # labels and self-introductions: cheap to run
    if "某" in norm:
        patterns.append(_NAME_PATTERNS[4])
    if any(title in norm for title in _TITLE_HINTS):
        patterns += _NAME_PATTERNS[5:]
    return [_Span(m.start("name"), m.end("name"), NAME) for p in patterns for m in p.finditer(norm)]


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """(start, end, token) of every piece of personal data in `text`, in order, not overlapping."""
    norm = text.translate(_nfkc_table())
    at = "@" in norm or (("(" in norm or "[" in norm) and _AT_RE.search(norm))
    candidates = [_Span(m.start(), m.end(), EMAIL) for m in _EMAIL_RE.finditer(norm)] if at else []
    candidates += _number_spans(norm)
    if "*" in norm or "x" in norm or "X" in norm or "×" in norm or "●" in norm or "•" in norm:
        candidates += [_Span(m.start(), m.end(), MOBILE) for m in _HIDDEN_MOBILE_RE.finditer(norm)
                       if len(re.sub(r"[\s-]", "", m.group())) == 11]
    if "证" in norm or "护照" in norm or "assport" in norm or "ASSPORT" in norm:
        candidates += [_Span(m.start("code"), m.end("code"), PASSPORT) for m in _DOCUMENT_RE.finditer(norm)]
    candidates += _tail_spans(norm)
    candidates += _name_spans(norm)
    taken: list[_Span] = []
    for span in candidates:  # earlier kinds win an overlap: email, numbers, tail numbers, names
        if all(span.end <= other.start or span.start >= other.end for other in taken):
            taken.append(span)
    return [(s.start, s.end, s.token) for s in sorted(taken, key=lambda s: s.start)]


def mask_text(text: str) -> str:
    """Replace personal data with tokens that keep its kind, e.g. 13812345678 → [手机号]; every
    other character of the text stays as it was."""
    out: list[str] = []
    position = 0
    for start, end, token in find_pii(text):
        out += (text[position:start], token)
        position = end
    return "".join(out) + text[position:] if out else text

"""Offline sentiment and intensity for bank voices: a lexicon scorer with negation, sarcasm and
escalation handling. Written for customer-service Chinese, where "还行" is faint praise and
"真是太好了，又扣我钱" is not praise at all."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voc.contracts import Sentiment, Signal
from voc.models import Channel
from voc.text import simplified

NEGATIVE = (
    "投诉", "不满", "失望", "生气", "气死", "愤怒", "垃圾", "坑", "骗", "忽悠",
    "误导", "差劲", "太差", "很差", "差评", "烂", "恶心", "无语", "离谱", "过分",
    "敷衍", "推诿", "踢皮球", "态度差", "不耐烦", "挂我电话", "骚扰", "收不到",
    "没收到", "失败", "报错", "闪退", "卡死", "卡顿", "打不开", "登不上", "登录不了",
    "用不了", "不能用", "无法", "不了", "没到账", "未到账", "扣了", "多扣", "乱扣",
    "重复扣", "吞卡", "冻结", "排队", "等了", "半天", "太久", "太慢", "好慢",
    "很慢", "转不到", "找不到", "听不懂", "答非所问", "麻烦", "繁琐", "跑了", "来回跑",
    "太贵", "太高", "不合理", "不透明", "没告诉", "没说清", "不清楚", "看不懂", "乱收",
    "没人管", "没人理", "没回复", "没人联系", "没回电", "不回电", "一直", "还是不行",
    "又", "难用", "不方便", "不靠谱", "不专业", "错误", "有问题", "异常", "泄露",
    "莫名其妙", "凭什么", "为什么", "到底", "怎么回事", "受不了", "崩溃", "着急",
    "急死", "耽误", "损失", "亏", "bug", "Bug", "BUG", "差", "问题",
)
POSITIVE = (
    "感谢", "谢谢", "表扬", "点赞", "满意", "好评", "挺好", "真好", "很棒", "靠谱",
    "省心", "暖心", "用心", "耐心", "专业", "热情", "周到", "贴心", "及时", "高效",
    "方便", "便捷", "快", "清楚", "解决了", "帮我解决", "很好", "非常好", "不错",
    "赞", "棒", "给力", "好用", "顺利", "温暖", "细心", "负责", "优秀", "辛苦了",
    "good", "great", "nice",
)
NEUTRAL_CUES = (
    "请问", "咨询", "怎么", "如何", "在哪", "哪里", "能不能", "可以吗", "吗",
    "多少", "什么时候", "是否", "查询", "了解一下", "想问", "问一下", "办理", "开通",
)
NEGATORS = ("不", "没", "没有", "未", "别", "非", "无")
INTENSIFIERS = (
    "太", "非常", "特别", "极其", "超级", "真的", "实在", "简直", "完全", "根本",
    "彻底", "一点都", "到底",
)
SARCASM = (
    "呵呵", "真是太好了", "真行", "真棒啊", "服了", "可真", "好一个", "厉害了", "绝了",
    "谢谢你们啊", "感谢你们让我", "谢谢啊", "良苦用心", "真贴心", "真是贴心", "省得我",
    "🙂", "🙃", "😅", "👍👍👍",
)
# How customers complain without a complaint word: waiting, refusals, forced steps, suggestions.
COMPLAINTS = (
    "还没", "没到", "没有到", "还是没", "不给", "不让", "不收", "只能", "非得",
    "必须本人", "凭什么", "怎么还", "白跑", "又要", "麻烦", "意义在哪", "有什么用",
    "没用", "说好的", "多掏钱", "收了我", "扣了我", "吓得", "心疼", "耽误", "排不上",
    "等不到", "找不着", "不会用", "看不清", "点不到", "弹广告", "老打", "天天打",
    "建议", "希望能", "能不能改", "能不能多", "能不能简化",
)
# A failure described rather than named: waiting, repeating, errors seen, refusals, cold treatment.
PROBLEM_PATTERNS = tuple(re.compile(p) for p in (
    r"一直(不|没|提示|转|打不|排|在)",
    r"没有?(来|到账|收到|钱|反应|回音|下文|人管|人接)",
    r"(转|排|等)了.{0,4}(个人|小时|天|上午|下午|遍|次)",
    r"(退订|投诉|反映).{0,8}(还|依旧|照样|仍然)",
    r"(写|印|搞|弄|算)(错|成)",
    r"不相干|回答的什么|推.{1,8}干嘛|驴唇不对马嘴",
    r"冷冰冰|口气.{0,2}冲|不舒服|爱答不理",
    r"心里慌|慌得|急用|截止|来不及",
    r"超过?限额|超限",
    r"(一|刚)打开就(退|闪|黑)|黑屏|白屏",
    r"(转人工){2,}",
    r"[?？]{1,}.{0,6}[?？]",
    r"(点|试|打)了.{0,3}(次|遍)",
))
_QUOTED_PRAISE_RE = re.compile(r"[“\"「]([^”\"」]{1,10})[”\"」]")
QUESTION_ONLY_MAX_CHARS = 30
THREATS = (
    "12378", "银保监", "金管局", "金融监管", "人民银行", "监管部门", "监管", "举报",
    "曝光", "媒体", "记者", "起诉", "律师", "法院", "报警", "12345", "消协",
    "黑猫", "微博", "抖音", "销户", "再也不用",
)
BLOCKED = (
    "用不了", "取不出", "转不出", "到不了账", "没到账", "未到账", "冻结", "止付",
    "登录不了", "登不上", "打不开", "交不了", "还不了", "付不了", "吞卡", "急用",
    "医药费", "工资", "养老金", "学费", "房租", "逾期",
)
FAILURES = (
    "收不到", "没收到", "失败", "报错", "闪退", "卡死", "打不开", "登不上", "登录不了",
    "用不了", "不能用", "没到账", "未到账", "多扣", "重复扣", "乱扣", "吞卡", "冻结",
    "转不到", "找不到", "听不懂", "答非所问",
)
_WINDOW = 3
_EXCLAIM_RE = re.compile(r"[!！]{1,}|[?？]{2,}")


@dataclass
class SentimentResult:
    sentiment: Sentiment
    intensity: int
    score: float
    signals: list[Signal] = field(default_factory=list)


def _hits(text: str, words: tuple[str, ...]) -> list[tuple[int, str]]:
    found = []
    for word in words:
        start = text.find(word)
        while start != -1:
            found.append((start, word))
            start = text.find(word, start + len(word))
    return found


def _negated(text: str, position: int) -> bool:
    before = text[max(0, position - _WINDOW) : position]
    return any(n in before for n in NEGATORS) and not before.endswith(("不了", "没人"))


def _polarity(text: str) -> tuple[float, float]:
    positive = negative = 0.0
    for position, _word in _hits(text, POSITIVE):
        if _negated(text, position):
            negative += 1.0  # "不满意", "不方便", "没解决"
        else:
            positive += 1.0
    for position, word in _hits(text, NEGATIVE):
        if _negated(text, position) and word not in ("不了", "无法"):
            positive += 0.3  # "没问题", "不麻烦" lean positive, weakly
        else:
            negative += 1.0 if len(word) > 1 else 0.5
    return positive, negative


def analyse(text: str, channel: str = "") -> SentimentResult:
    """Sentiment 负面/中性/正面 with intensity 1–5 and the signals that drove it."""
    text = simplified(text)
    signals: list[Signal] = []
    positive, negative = _polarity(text)
    negative += sum(1.0 if len(w) > 2 else 0.7 for w in COMPLAINTS if w in text)
    described = sum(1 for pattern in PROBLEM_PATTERNS if pattern.search(text))
    negative += described
    failures = described > 0 or any(w in text for w in FAILURES)
    quoted_praise = any(any(p in q for p in POSITIVE) for q in _QUOTED_PRAISE_RE.findall(text))
    # Praise words around a failure the customer is living through are irony, not praise.
    sarcastic = negative > 0 and (any(m in text for m in SARCASM) or quoted_praise or (positive > 0 and failures))
    if sarcastic:
        signals.append(Signal.SARCASM)
        negative += positive + 1
        positive = 0
    threats = [w for w in THREATS if w in text]
    if threats:
        signals.append(Signal.THREAT)
        negative += 2
    if any(w in text for w in BLOCKED):
        signals.append(Signal.BLOCKED)
    if channel in (Channel.COMPLAINT, Channel.REGULATOR) and positive <= negative:
        negative += 1  # the channel itself says the customer escalated
    score = positive - negative
    if negative > positive and not (not threats and _is_question_only(text, negative)):
        return SentimentResult(Sentiment.NEGATIVE, _negative_intensity(text, negative, signals), score, signals)
    if score >= 1:
        intensity = min(5, 1 + int(positive) + len(_hits(text, INTENSIFIERS)))
        return SentimentResult(Sentiment.POSITIVE, intensity, score, signals)
    return SentimentResult(Sentiment.NEUTRAL, 1, score, signals)


def _is_question_only(text: str, negative: float) -> bool:
    """A how-to question ("为什么要填这么多信息？怎么办理") touches a problem word without reporting a
    problem. A question about a failure the customer is living through ("验证码收不到怎么办") is still a
    negative voice: the failure is what the VOC team needs to count."""
    return (negative <= 1 and len(text) <= QUESTION_ONLY_MAX_CHARS and any(c in text for c in NEUTRAL_CUES)
            and not _EXCLAIM_RE.search(text) and not any(w in text for w in FAILURES + COMPLAINTS)
            and not any(p.search(text) for p in PROBLEM_PATTERNS))


def _negative_intensity(text: str, negative: float, signals: list[Signal]) -> int:
    level = 2
    if negative >= 3 or _hits(text, INTENSIFIERS):
        level += 1
    if _EXCLAIM_RE.search(text) or Signal.SARCASM in signals:
        level += 1
    if Signal.THREAT in signals:
        level += 1
    if Signal.BLOCKED in signals:
        level += 1
    return max(2, min(5, level))


def negative_intensity(text: str, result: SentimentResult) -> int:
    """The intensity of a voice known to be negative (the learned layer said so where the lexicon
    did not), from the lexicon's own reading `result` of it: the same cues — intensifiers,
    exclamation, sarcasm, threats, blocked funds."""
    if result.sentiment == Sentiment.NEGATIVE:
        return result.intensity
    return _negative_intensity(simplified(text), max(1.0, -result.score), result.signals)

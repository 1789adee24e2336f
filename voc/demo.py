"""Synthetic 客户声音 stream for demos and benchmarks.

This is demo and benchmark data generated from the scenarios below. It must never be used as the
evaluation gold set: the texts are templated, so a model scored on them is scored on this file.
See docs/demo_data.md for the scenario table, the channel funnel and the weekly spikes.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import string
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, Generic, TypeVar

from voc.kb_models import Dimension
from voc.models import LOCAL_TZ, Business, Channel, Segment, SourceType

T = TypeVar("T")

RECURRING, CONSULT, PRAISE, ONEOFF = "recurring", "consult", "praise", "oneoff"
KINDS = (RECURRING, CONSULT, PRAISE, ONEOFF)

BANK = "某银行"
ID_PREFIX = "DEMO"

# 客户服务漏斗: staff reports sit above complaints, so 员工反馈 gets a little more than 投诉工单.
CHANNEL_SHARES: dict[Channel, float] = {
    Channel.ROBOT: 0.45,
    Channel.PHONE: 0.20,
    Channel.ONLINE: 0.14,
    Channel.APP_FEEDBACK: 0.06,
    Channel.SOCIAL: 0.03,
    Channel.BRANCH_BOOK: 0.02,
    Channel.SURVEY: 0.03,
    Channel.STAFF: 0.035,
    Channel.COMPLAINT: 0.025,
    Channel.REGULATOR: 0.01,
}
CHANNEL_JITTER = 0.08

# Share of recurring problems, consultations, praise and one-off complaints in each channel.
KIND_MIX: dict[Channel, tuple[float, float, float, float]] = {
    Channel.ROBOT: (0.50, 0.40, 0.02, 0.08),
    Channel.PHONE: (0.55, 0.22, 0.13, 0.10),
    Channel.ONLINE: (0.55, 0.22, 0.13, 0.10),
    Channel.APP_FEEDBACK: (0.60, 0.05, 0.25, 0.10),
    Channel.SOCIAL: (0.70, 0.00, 0.15, 0.15),
    Channel.BRANCH_BOOK: (0.45, 0.05, 0.40, 0.10),
    Channel.SURVEY: (0.40, 0.05, 0.45, 0.10),
    Channel.STAFF: (0.85, 0.10, 0.00, 0.05),
    Channel.COMPLAINT: (0.85, 0.00, 0.00, 0.15),
    Channel.REGULATOR: (0.85, 0.00, 0.00, 0.15),
}

# Volume multipliers for these scenarios in the last generated week (see _Week._spike_plan).
SPIKES: dict[str, float] = {"app_crash_after_upgrade": 4.0, "login_otp_missing": 2.5}

PII_SHARE = 0.08
# Staff reports carry no customer data, so customer rows carry a little more to reach PII_SHARE overall.
CUSTOMER_PII_CHANCE = PII_SHARE / (1 - CHANNEL_SHARES[Channel.STAFF])
REPEAT_SHARE = 0.03
EXACT_DUPLICATES_PER_1000 = 1
ANONYMOUS_ROBOT_SHARE = 0.2
MISSING_BUSINESS_SHARE = {Channel.SOCIAL: 0.25, Channel.ROBOT: 0.08}
DEFAULT_MISSING_BUSINESS = 0.03

DEFAULT_SEGMENTS: dict[Segment, float] = {
    Segment.PERSONAL: 0.77,
    Segment.ELDERLY: 0.11,
    Segment.CORPORATE: 0.055,
    Segment.PRIVATE_BANKING: 0.03,
    Segment.UNKNOWN: 0.035,
}
PERSONAL_ONLY = {Segment.CORPORATE: 0.0}


@dataclass(frozen=True)
class Topic:
    """What a row is about: a recurring scenario, a consultation, praise or a one-off complaint."""

    key: str
    kind: str
    title: str
    business: Business | None
    gist: str
    phrasings: tuple[str, ...]
    queries: tuple[str, ...] = ()
    demands: tuple[str, ...] = ("尽快处理并给个答复",)
    suggestions: tuple[str, ...] = ("梳理相关流程并统一对客口径",)
    dimension: Dimension | None = None
    owner: str = ""
    weight: float = 1.0
    trend: float = 0.0
    affinity: Mapping[Channel, float] = field(default_factory=dict)
    segments: Mapping[Segment, float] = field(default_factory=dict)

    def weight_in_week(self, index: int) -> float:
        return self.weight * (1.0 + self.trend) ** index


SCENARIOS: tuple[Topic, ...] = (
    Topic(
        key="login_otp_missing",
        kind=RECURRING,
        title="手机银行登录验证码收不到",
        dimension="机",
        business=Business.MOBILE_BANKING,
        owner="网络金融部",
        weight=7.0,
        trend=0.01,
        affinity={Channel.APP_FEEDBACK: 1.5},
        gist="手机银行登录收不到短信验证码",
        queries=("验证码收不到", "收不到短信验证码", "登录没有验证码", "验证码一直不来"),
        phrasings=(
            "手机银行登录一直收不到验证码，点了{times}重新发送都没用，{dur}了还是登不上",
            "换了新手机登录手机银行，短信验证码死活收不到，运营商说没有拦截",
            "验证码要么不来，要么来了已经过期，从{date}到现在都没登录成功",
            "我想转账，结果登录要验证码，等了{dur}短信也没来，耽误我付款",
            "人在外地漫游，手机银行的验证码就收不到了，是不是你们短信通道有问题",
            "{date}开始登录手机银行就提示验证码已发送，可我手机上什么都没收到",
            "收不到验证码，语音验证码也打不进来，客服电话又排不上队，到底怎么登录",
        ),
        demands=("尽快排查短信发送问题", "提供其他登录验证方式", "回电告知处理结果"),
        suggestions=("增加语音验证码或APP推送验证等备用方式", "排查短信通道在各运营商的到达率"),
    ),
    Topic(
        key="face_recognition_fail",
        kind=RECURRING,
        title="人脸识别反复失败",
        dimension="机",
        business=Business.MOBILE_BANKING,
        owner="网络金融部",
        weight=5.0,
        segments={Segment.ELDERLY: 2.0},
        gist="手机银行人脸识别认证反复失败",
        queries=("人脸识别失败", "刷脸过不去", "活体检测失败怎么办"),
        phrasings=(
            "刷脸认证做了{times}都说不是本人，我就是本人啊",
            "人脸识别一直提示光线不足，我在大白天窗户边都过不去",
            "老人眼睛眨不好，人脸识别那个眨眼摇头的动作老是失败，根本通过不了",
            "改密码要刷脸，刷了半天提示活体检测失败，又没有别的办法验证",
            "刚换的身份证，人脸识别就对不上了，总说比对不一致",
            "{phone_model}上人脸识别一打开摄像头就黑屏，失败{times}后还被锁了24小时",
        ),
        demands=("提供人脸识别以外的验证方式", "解除锁定"),
        suggestions=("为人脸识别失败提供短信加密码等替代验证路径", "放宽老年客户的活体动作要求"),
    ),
    Topic(
        key="app_crash_after_upgrade",
        kind=RECURRING,
        title="APP升级后闪退",
        dimension="机",
        business=Business.MOBILE_BANKING,
        owner="信息科技部",
        weight=4.0,
        affinity={Channel.APP_FEEDBACK: 3.0, Channel.SOCIAL: 2.0},
        gist="手机银行升级新版本后闪退",
        queries=("APP闪退", "手机银行打不开", "升级后闪退怎么办", "新版本一直闪退"),
        phrasings=(
            "手机银行升级到{ver}以后一打开就闪退，重装了也不行",
            "更新完新版本APP，点转账就直接退出来了，用的是{phone_model}",
            "昨天提示强制升级，升完{ver}就闪退，现在啥都办不了",
            "新版APP打开白屏几秒然后闪退，我卸载重装{times}了",
            "升级后登录页面卡住，再点就闪退，旧版本又不让用",
            "你们APP更新到{ver}是不是有bug，一进理财页面就崩溃退出",
            "手机银行升级后闪退，工资到账了都查不了余额，急死人",
        ),
        demands=("尽快修复闪退问题", "恢复旧版本可用"),
        suggestions=("新版本灰度发布并监控崩溃率", "强制升级前做主流机型兼容性测试"),
    ),
    Topic(
        key="transfer_not_arrived",
        kind=RECURRING,
        title="转账扣款未到账",
        dimension="机",
        business=Business.TRANSFER,
        owner="运营管理部",
        weight=5.0,
        segments={Segment.CORPORATE: 1.5},
        gist="转账已扣款但对方未到账",
        queries=("转账没到账", "钱扣了对方没收到", "转账一直处理中"),
        phrasings=(
            "{date}给别人转了{amount}，我这边钱扣了对方说没收到",
            "跨行转账{amount}显示处理中，已经{days}了还没到账",
            "转账提示失败，可我卡里的钱已经扣掉了，{amount}到底去哪了",
            "给家里汇了{amount}，钱扣了对方账户没有，你们查一下卡在哪个环节",
            "转账状态一直是银行处理中，网点说要等，我已经等了{days}",
            "我用手机银行转{amount}给房东，对方说没到，我这边流水显示已扣款",
        ),
        demands=("查明资金去向并尽快到账", "退回已扣款项"),
        suggestions=("在转账结果页展示清算环节和预计到账时间", "对处理中超时交易主动推送进度"),
    ),
    Topic(
        key="cc_installment_fee_opaque",
        kind=RECURRING,
        title="信用卡分期手续费不透明",
        dimension="物",
        business=Business.CREDIT_CARD,
        owner="信用卡中心",
        weight=4.5,
        trend=0.01,
        segments=PERSONAL_ONLY,
        gist="信用卡分期手续费和实际年化费率不透明",
        queries=("分期手续费怎么算", "分期年化利率多少", "分期手续费太高"),
        phrasings=(
            "办分期的时候说免息，结果每期都扣手续费，一共收了我{fee}",
            "账单分期的手续费率根本没讲清楚，折算下来年化比说的高很多",
            "客服打电话推荐分期，只说每期还多少，没说手续费总共{fee}",
            "我{amount}分了12期，提前还款手续费还要一次性收完，当时没人告诉我",
            "APP上分期页面只写了月费率，实际年化利率在哪里看得到",
            "自动分期是谁给我开的？账单里莫名多了分期手续费{fee}",
        ),
        demands=("退还分期手续费", "说明实际年化利率"),
        suggestions=("分期页面显著展示年化利率和手续费总额", "外呼营销话术必须讲清总费用"),
    ),
    Topic(
        key="cc_points_rule_change",
        kind=RECURRING,
        title="信用卡积分规则变更",
        dimension="法",
        business=Business.CREDIT_CARD,
        owner="信用卡中心",
        weight=3.0,
        segments=PERSONAL_ONLY,
        gist="信用卡积分规则变更未充分告知",
        queries=("积分规则改了", "积分清零", "积分怎么兑换"),
        phrasings=(
            "积分规则说改就改，我攒了一年的积分能换的东西少了一半",
            "之前说消费一块钱一分，现在很多商户都不给积分了，也没提前通知",
            "积分{date}就过期清零了，短信提醒都没有",
            "新规则下兑换里程要多花好多积分，老用户太吃亏了",
            "积分抵年费的规则改了，我按原来的标准刷够了，现在说不算",
            "你们积分规则改了在哪公示的？我一点都不知道",
        ),
        demands=("恢复被清零的积分", "按原规则兑换"),
        suggestions=("规则变更提前30天逐户告知", "设置新旧规则过渡期"),
    ),
    Topic(
        key="cc_annual_fee_dispute",
        kind=RECURRING,
        title="信用卡年费争议",
        dimension="法",
        business=Business.CREDIT_CARD,
        owner="信用卡中心",
        weight=3.0,
        segments=PERSONAL_ONLY,
        gist="信用卡年费收取争议",
        queries=("年费怎么收", "为什么扣年费", "年费能退吗"),
        phrasings=(
            "办卡时说首年免年费刷够次数就免，现在扣了我{fee}年费",
            "这张卡我一直没激活，怎么还收了年费，还影响征信",
            "白金卡年费{fee}直接扣了，扣之前没有任何提醒",
            "我刷满了6次，系统说只算了5次，年费照扣",
            "销卡的时候才发现欠了年费，当初业务员说终身免年费",
            "年费能不能退，我根本不知道这张卡要收年费",
        ),
        demands=("退还年费", "消除征信不良记录"),
        suggestions=("扣年费前短信提醒并告知减免条件", "规范发卡营销中的免年费承诺"),
    ),
    Topic(
        key="collection_call_harassment",
        kind=RECURRING,
        title="催收电话骚扰",
        dimension="法",
        business=Business.CREDIT_CARD,
        owner="信用卡中心",
        weight=3.0,
        trend=0.02,
        affinity={Channel.COMPLAINT: 3.0, Channel.REGULATOR: 4.0, Channel.ROBOT: 0.3},
        segments=PERSONAL_ONLY,
        gist="催收电话频繁骚扰并联系第三人",
        queries=("催收电话太多", "投诉催收", "催收打给我家人"),
        phrasings=(
            "催收电话一天打十几个，还打到我单位和我父母那里",
            "我只是逾期{days}，催收的人说话难听，还说要上门",
            "我已经协商好分期还款了，催收还在天天打电话骚扰",
            "催收把电话打给我通讯录里的朋友，这合法吗",
            "晚上十点多还在打催收电话，家里老人被吓到了",
            "外包催收自称是法院的，威胁我说要起诉坐牢",
        ),
        demands=("停止骚扰式催收", "追究催收人员责任"),
        suggestions=("加强委外催收机构的录音质检", "严格限制催收频次和联系时段"),
    ),
    Topic(
        key="antifraud_freeze",
        kind=RECURRING,
        title="反诈冻结无法解冻",
        dimension="法",
        business=Business.DEBIT_CARD,
        owner="风险合规部",
        weight=3.5,
        trend=0.01,
        affinity={Channel.REGULATOR: 3.0, Channel.COMPLAINT: 2.0},
        gist="账户被反诈风控冻结或限制后解除困难",
        queries=("卡被冻结了", "怎么解除限制", "非柜面交易被限制"),
        phrasings=(
            "卡突然被冻结了，说是涉嫌电诈，我只是正常收了{amount}货款",
            "账户被限制非柜面交易，去网点让我提供一堆证明还解不了",
            "工资卡被冻结{days}了，房贷都还不上，到底谁能给解冻",
            "去{branch}办解冻，柜员说要等总行审核，没有时间",
            "我是做小生意的，收款多了就被风控，每次都要跑网点解释",
            "反诈冻结我理解，可是问了{times}都没人告诉我需要什么材料",
        ),
        demands=("尽快解除账户限制", "一次性告知所需材料"),
        suggestions=("公布解限材料清单和审核时限", "对低风险客户提供线上解限通道"),
    ),
    Topic(
        key="noncounter_limit_low",
        kind=RECURRING,
        title="非柜面限额太低调不了",
        dimension="法",
        business=Business.DEBIT_CARD,
        owner="运营管理部",
        weight=3.5,
        gist="非柜面交易限额过低且线上无法调整",
        queries=("转账限额怎么调", "限额太低", "非柜面限额"),
        phrasings=(
            "手机银行每天只能转{limit}，想调高必须去网点，太麻烦了",
            "新开的卡非柜面限额才{limit}，交个房租都不够",
            "我要付装修款，转账限额调不上去，客服说只能本人去柜台",
            "在外地工作，卡的限额调不了，总不能为这个专门回开户网点",
            "限额为什么这么低，我卡里自己的钱都转不出来",
            "申请调高限额被拒了，也不告诉原因",
        ),
        demands=("线上调高限额", "说明限额依据"),
        suggestions=("对核实身份的客户开放线上临时调额", "在开卡时讲清限额规则"),
    ),
    Topic(
        key="hotline_queue_long",
        kind=RECURRING,
        title="热线排队太久/转人工难",
        dimension="环",
        business=Business.SERVICE,
        owner="远程银行中心",
        weight=6.0,
        affinity={Channel.SURVEY: 2.0, Channel.SOCIAL: 2.0},
        segments={Segment.ELDERLY: 1.5},
        gist="客服热线排队时间长、转人工困难",
        queries=("转人工", "人工客服", "怎么找人工", "电话打不进去"),
        phrasings=(
            "打你们客服电话排了{dur}队，最后还自动挂断了",
            "转人工太难了，按了{times}零都是机器人在绕圈",
            "电话一直提示坐席忙，{date}打了一上午都没接通",
            "想找个人工客服比登天还难，语音导航一层套一层",
            "等了{dur}终于接通了，结果说这个问题要转别的部门又排队",
            "晚上打客服说人工下班了，紧急挂失都找不到人",
        ),
        demands=("缩短等待时间", "提供回拨服务"),
        suggestions=("高峰时段增加排班并提供预约回拨", "简化语音导航层级"),
    ),
    Topic(
        key="robot_irrelevant_answer",
        kind=RECURRING,
        title="机器人答非所问",
        dimension="机",
        business=Business.SERVICE,
        owner="远程银行中心",
        weight=5.5,
        affinity={Channel.ROBOT: 1.5, Channel.BRANCH_BOOK: 0.2},
        gist="智能客服机器人答非所问",
        queries=("答非所问", "你听不懂吗", "人工 人工", "没用"),
        phrasings=(
            "你这个机器人答非所问，我问的是{topic}你给我推理财",
            "我说了三遍要查还款，你一直让我重新描述问题",
            "智能客服什么都不懂，就会发链接",
            "人工，人工，我要人工，别让机器人回答了",
            "机器人回复的流程和APP里根本对不上",
            "问了{times}都识别不了我的问题，浪费时间",
        ),
        demands=("直接转人工", "改进机器人回答"),
        suggestions=("补充高频问题的机器人知识并定期回归", "连续两轮未识别时主动转人工"),
    ),
    Topic(
        key="agent_attitude_poor",
        kind=RECURRING,
        title="坐席态度差",
        dimension="人",
        business=Business.SERVICE,
        owner="远程银行中心",
        weight=3.5,
        affinity={Channel.ROBOT: 0.15, Channel.COMPLAINT: 3.0, Channel.SURVEY: 3.0},
        segments={Segment.ELDERLY: 1.5},
        gist="客服坐席服务态度差",
        queries=("投诉客服态度", "客服态度不好"),
        phrasings=(
            "你们客服态度太差了，我还没说完就打断我",
            "工号{agent}的坐席很不耐烦，问两遍就语气不好",
            "客服说话阴阳怪气，好像我在无理取闹",
            "我问个问题，客服直接说不知道然后就想挂电话",
            "接电话的人态度很冷漠，一点帮我解决的意思都没有",
            "客服一直催我快点说，老人讲话慢一点怎么了",
        ),
        demands=("坐席道歉", "处理涉事坐席"),
        suggestions=("针对服务态度开展质检和情绪管理培训", "对老年客户来电放慢语速"),
    ),
    Topic(
        key="agent_answer_inconsistent",
        kind=RECURRING,
        title="坐席答复口径不一致",
        dimension="人",
        business=Business.SERVICE,
        owner="远程银行中心",
        weight=3.0,
        affinity={Channel.ROBOT: 0.3, Channel.STAFF: 2.0},
        gist="不同坐席对同一问题答复口径不一致",
        queries=("到底以哪个说法为准", "客服说的不一样"),
        phrasings=(
            "打了三次电话三个客服三个说法，到底以哪个为准",
            "上次客服说可以线上办，这次又说必须去网点",
            "在线客服和电话客服说的不一样，网点又是另一套说法",
            "客服告诉我{days}到账，结果问另一个说要一个月",
            "第一个客服说手续费可以退，第二个说不可以",
            "你们的人自己都搞不清楚规则，让客户怎么办",
        ),
        demands=("给出明确统一的答复",),
        suggestions=("统一知识库口径并推送到各渠道", "规则变更后组织坐席培训和抽测"),
    ),
    Topic(
        key="callback_not_returned",
        kind=RECURRING,
        title="工单承诺回电未回",
        dimension="人",
        business=Business.SERVICE,
        owner="消费者权益保护部",
        weight=3.0,
        trend=0.01,
        affinity={Channel.COMPLAINT: 3.0, Channel.REGULATOR: 2.0, Channel.ROBOT: 0.3},
        gist="工单承诺回电但未按时回复",
        queries=("一直没人回电", "工单没人处理", "催办工单"),
        phrasings=(
            "上次说{days}内给我回电话，到现在一个电话都没有",
            "工单提交了{days}，没人跟进也没人联系我",
            "每次打电话都说已经催办了，请耐心等待，要等到什么时候",
            "说好的专人回复呢？我又得从头讲一遍",
            "承诺回电的时间早过了，我的问题还是没人处理",
            "你们说会有后台部门联系我，我等了{days}",
        ),
        demands=("指定专人跟进", "按承诺时间回电"),
        suggestions=("工单回电时限纳入考核并自动预警", "超时工单自动升级"),
    ),
    Topic(
        key="wealth_redemption_slow",
        kind=RECURRING,
        title="理财赎回到账慢",
        dimension="物",
        business=Business.WEALTH,
        owner="财富管理部",
        weight=3.0,
        segments={Segment.PRIVATE_BANKING: 8.0, Segment.ELDERLY: 1.5, Segment.CORPORATE: 0.0},
        gist="理财产品赎回资金到账慢",
        queries=("赎回什么时候到账", "理财赎回没到账", "赎回进度"),
        phrasings=(
            "理财赎回{days}了钱还没到账，等着用钱",
            "买的时候说T+1到账，赎回的时候变成T+3了",
            "{product}赎回了{amount}，到现在状态还是处理中",
            "赎回到账时间写得不清楚，遇到节假日又往后拖了好几天",
            "急用钱赎回理财，结果要等一周，早知道不买了",
            "赎回的钱没回到卡里，APP也查不到进度",
        ),
        demands=("尽快到账", "说明到账规则"),
        suggestions=("在购买和赎回页面写明含节假日的到账日", "提供赎回进度查询"),
    ),
    Topic(
        key="wealth_misselling",
        kind=RECURRING,
        title="理财销售误导",
        dimension="人",
        business=Business.WEALTH,
        owner="财富管理部",
        weight=2.5,
        trend=0.01,
        affinity={Channel.REGULATOR: 4.0, Channel.COMPLAINT: 3.0, Channel.ROBOT: 0.3},
        segments={Segment.PRIVATE_BANKING: 5.0, Segment.ELDERLY: 3.0, Segment.CORPORATE: 0.0},
        gist="理财产品销售误导、风险揭示不充分",
        queries=("理财亏损投诉", "理财经理误导"),
        phrasings=(
            "网点理财经理说保本保收益，结果亏了{amount}",
            "我去存定期，被推销买了{product}，根本不知道是有风险的",
            "风险评估是理财经理帮我填的，我自己没看过内容",
            "老人去存钱被劝买了保险，说是和存款一样",
            "销售的时候只说历史收益多高，没讲可能亏本金",
            "双录的时候让我照着念，实际情况根本没解释清楚",
        ),
        demands=("赔偿本金损失", "调查销售人员"),
        suggestions=("抽查双录质量并回访高龄客户", "风险测评禁止代填"),
    ),
    Topic(
        key="mortgage_prepay_booking",
        kind=RECURRING,
        title="房贷提前还款预约难",
        dimension="物",
        business=Business.LOAN,
        owner="个人信贷部",
        weight=3.5,
        trend=0.02,
        segments=PERSONAL_ONLY,
        gist="房贷提前还款预约困难",
        queries=("提前还款怎么预约", "房贷提前还款", "预约不上提前还款"),
        phrasings=(
            "想提前还房贷，预约要排到{months}以后",
            "APP上提前还款预约名额每天早上一放就没了",
            "客服说提前还款只能去贷款经办行，我在外地怎么去",
            "预约提前还款{times}都没约上，是不是故意不让还",
            "提前还款还要收违约金，合同里写得很模糊",
            "我想部分提前还款{amount}，一会儿说要预约一会儿说额度满了",
        ),
        demands=("尽快安排提前还款", "免收违约金"),
        suggestions=("开通线上提前还款并取消额度限制", "在合同和APP中写明违约金规则"),
    ),
    Topic(
        key="social_security_card_activation",
        kind=RECURRING,
        title="社保卡激活流程繁琐",
        dimension="物",
        business=Business.DEBIT_CARD,
        owner="零售业务部",
        weight=2.5,
        affinity={Channel.BRANCH_BOOK: 2.0, Channel.STAFF: 2.0},
        segments={Segment.ELDERLY: 4.0, Segment.CORPORATE: 0.0},
        gist="社保卡金融功能激活流程繁琐",
        queries=("社保卡怎么激活", "社保卡激活失败", "社保卡金融功能"),
        phrasings=(
            "社保卡激活要跑网点，还要本人带身份证，老人行动不便",
            "新社保卡的金融功能激活了{times}都没成功",
            "社保卡激活要先去社保局再来银行，两边来回跑",
            "帮我妈激活社保卡，网点说要本人到场，她卧床不起怎么到",
            "社保卡密码忘了要重置，又得排队激活一遍",
            "线上激活社保卡步骤太多，老年人根本弄不来",
        ),
        demands=("上门办理激活", "简化激活手续"),
        suggestions=("为行动不便客户提供上门激活", "与社保部门打通线上激活"),
    ),
    Topic(
        key="elderly_mode_hard_to_find",
        kind=RECURRING,
        title="适老版入口难找",
        dimension="物",
        business=Business.MOBILE_BANKING,
        owner="网络金融部",
        weight=2.0,
        affinity={Channel.BRANCH_BOOK: 2.0, Channel.STAFF: 2.0},
        segments={Segment.ELDERLY: 7.0, Segment.CORPORATE: 0.0},
        gist="手机银行适老版（关怀模式）入口难找、功能不全",
        queries=("大字版在哪", "老年模式怎么开", "关怀模式"),
        phrasings=(
            "你们手机银行的大字版在哪里切换，我找了半天找不到",
            "适老版入口藏得太深了，子女教了好几次我还是记不住",
            "切换到关怀模式以后转账功能又找不到了",
            "字太小了看不清，听说有老年版，可是在哪里设置",
            "老年模式里好多功能没有，又得切回去，切回去又看不清",
            "我七十多了，APP里那么多弹窗，点错了好几次",
        ),
        demands=("把大字版入口放到首页",),
        suggestions=("首页固定展示关怀模式入口", "关怀模式补齐转账和缴费功能"),
    ),
    Topic(
        key="atm_card_swallowed",
        kind=RECURRING,
        title="ATM吞卡",
        dimension="机",
        business=Business.DEBIT_CARD,
        owner="网点渠道部",
        weight=2.0,
        affinity={Channel.PHONE: 2.0, Channel.BRANCH_BOOK: 2.0, Channel.APP_FEEDBACK: 0.2},
        segments={Segment.ELDERLY: 1.5},
        gist="ATM吞卡后领卡不便",
        queries=("ATM吞卡", "卡被取款机吞了", "吞卡怎么领"),
        phrasings=(
            "在{branch}的ATM取钱，卡被吞了，钱也没出来",
            "晚上ATM吞卡，打客服说要等网点上班才能领",
            "取款机吞了我的卡，网点说要{days}才能拿回",
            "ATM显示交易超时然后卡就没退出来，卡里还有{amount}",
            "自助机吞卡后领卡还要带身份证到指定网点，我在外地",
            "ATM故障吞卡，旁边也没有紧急电话",
        ),
        demands=("尽快退卡", "核实取款是否成功"),
        suggestions=("缩短吞卡领取时限并支持就近网点领卡", "排查故障率高的自助设备"),
    ),
    Topic(
        key="branch_queue_long",
        kind=RECURRING,
        title="网点排队时间长",
        dimension="环",
        business=Business.BRANCH,
        owner="网点渠道部",
        weight=3.0,
        affinity={Channel.BRANCH_BOOK: 5.0, Channel.SOCIAL: 2.0, Channel.SURVEY: 2.0, Channel.ROBOT: 0.4},
        segments={Segment.ELDERLY: 2.5},
        gist="网点排队等候时间长",
        queries=("网点排队人多吗", "网点几点人少", "网点排队"),
        phrasings=(
            "{branch}只开了两个窗口，我排了{dur}",
            "周末去网点办业务，叫号叫到一百多号",
            "网点中午窗口全关，上班族只能中午去",
            "取个号等了{dur}，VIP窗口空着也不给普通客户办",
            "网点人太多，老人站着等没地方坐",
            "大堂经理只会让我去机器上办，机器上又办不了",
        ),
        demands=("增加窗口", "提供预约取号"),
        suggestions=("按客流高峰弹性开窗", "推广线上预约取号"),
    ),
    Topic(
        key="corporate_account_docs",
        kind=RECURRING,
        title="对公开户材料多",
        dimension="物",
        business=Business.CORPORATE,
        owner="公司金融部",
        weight=2.0,
        affinity={Channel.BRANCH_BOOK: 2.0, Channel.STAFF: 2.0, Channel.ROBOT: 0.5},
        segments={Segment.CORPORATE: 60.0, Segment.ELDERLY: 0.0},
        gist="对公账户开户材料多、周期长",
        queries=("对公开户要什么材料", "企业开户流程", "对公开户多久"),
        phrasings=(
            "公司开对公户要准备的材料太多了，跑了{times}还没开下来",
            "对公开户要法人本人到场，还要上门核实，周期{days}",
            "小微企业开个基本户，材料清单网上和网点说的不一样",
            "开户预约排到{date}以后，公司着急用账户",
            "补了{times}材料，每次都说还差一样，不能一次说清楚吗",
            "对公开户审核没通过也不说原因",
        ),
        demands=("一次性告知材料", "加快开户审核"),
        suggestions=("发布统一的对公开户材料清单", "开户预审线上化"),
    ),
    Topic(
        key="corporate_ukey_issue",
        kind=RECURRING,
        title="企业网银U盾问题",
        dimension="机",
        business=Business.ONLINE_BANKING,
        owner="公司金融部",
        weight=2.0,
        affinity={Channel.PHONE: 1.5, Channel.SOCIAL: 0.3},
        segments={Segment.CORPORATE: 60.0, Segment.ELDERLY: 0.0},
        gist="企业网银U盾无法识别或证书更新困难",
        queries=("U盾识别不了", "企业网银登录不了", "U盾证书更新"),
        phrasings=(
            "企业网银U盾插上没反应，驱动装了{times}",
            "U盾证书到期了，更新要去网点，财务走不开",
            "新电脑上企业网银登录不了，提示安全控件不兼容",
            "U盾密码锁了，解锁要法人来，法人出差了",
            "换了Win11以后企业网银的U盾就识别不了了",
            "企业网银代发工资卡在U盾签名这一步，发不出去",
        ),
        demands=("远程协助解决U盾问题", "支持线上更新证书"),
        suggestions=("适配新操作系统和浏览器的安全控件", "支持U盾证书线上更新"),
    ),
    Topic(
        key="marketing_sms_privacy",
        kind=RECURRING,
        title="营销短信骚扰/个人信息疑似泄露",
        dimension="法",
        business=Business.OTHER,
        owner="消费者权益保护部",
        weight=3.0,
        trend=0.02,
        affinity={Channel.REGULATOR: 3.0, Channel.COMPLAINT: 2.0, Channel.SOCIAL: 2.0},
        gist="营销短信电话骚扰及个人信息疑似泄露",
        queries=("退订营销短信", "不要再给我打营销电话", "信息泄露"),
        phrasings=(
            "每天好几条营销短信，回复T退订了也没用",
            "刚在你们行办了业务，马上就接到贷款推销电话，我的信息是不是泄露了",
            "营销电话知道我的名字和卡号后四位，你们怎么管理客户信息的",
            "我没同意过营销，怎么天天收到你们的信用卡推广短信",
            "有人冒充你们银行给我打电话，连我在哪个网点开户都知道",
            "我要求你们删除我的营销授权，不要再打电话了",
        ),
        demands=("停止营销打扰", "调查信息泄露"),
        suggestions=("退订后全渠道同步生效", "排查营销名单来源和外包商数据权限"),
    ),
    Topic(
        key="app_popup_ads",
        kind=RECURRING,
        title="APP广告弹窗多",
        dimension="环",
        business=Business.MOBILE_BANKING,
        owner="网络金融部",
        weight=2.0,
        affinity={Channel.APP_FEEDBACK: 3.0, Channel.SOCIAL: 1.5, Channel.PHONE: 0.5},
        gist="手机银行广告弹窗多、页面杂乱",
        queries=("关闭广告", "弹窗太多", "怎么关推荐"),
        phrasings=(
            "每次打开手机银行都先弹三个广告，关都关不掉",
            "首页全是营销活动，想找个转账按钮都找半天",
            "APP开屏广告要等五秒，着急付款的时候特别烦",
            "弹窗一个接一个，不小心点了就跳去借贷页面",
            "能不能给个关闭推荐和广告的开关",
            "手机银行越做越像购物软件，乱七八糟的",
        ),
        demands=("减少弹窗广告",),
        suggestions=("限制首页弹窗频次并提供关闭个性化推荐的开关",),
    ),
)


def _consult(key: str, gist: str, business: Business, *phrasings: str, **extra: Any) -> Topic:
    return Topic(key=key, kind=CONSULT, title=gist, business=business, gist=gist, phrasings=phrasings, **extra)


CONSULTS: tuple[Topic, ...] = (
    _consult(
        "consult_progress",
        "业务办理进度",
        Business.SERVICE,
        "我申请的信用卡审批到哪一步了",
        "想问下我的贷款审批进度",
        "之前提交的工单处理到哪了",
        "补办的卡寄出了吗，什么时候能收到",
        weight=3.0,
    ),
    _consult(
        "consult_open_mobile_banking",
        "怎么开通手机银行",
        Business.MOBILE_BANKING,
        "手机银行怎么开通",
        "怎么注册你们的手机银行",
        "开通手机银行需要去网点吗",
        weight=2.0,
    ),
    _consult(
        "consult_branch_hours",
        "网点营业时间",
        Business.BRANCH,
        "{branch}周末营业吗",
        "网点几点开门",
        "附近哪个网点能办外币业务，几点下班",
        weight=2.0,
    ),
    _consult(
        "consult_exchange_rate",
        "外汇牌价和换汇",
        Business.OTHER,
        "今天美元汇率多少",
        "换日元在哪里办，需要预约吗",
        "外币现钞兑换有额度限制吗",
    ),
    _consult(
        "consult_card_loss",
        "挂失补卡流程",
        Business.DEBIT_CARD,
        "卡丢了怎么挂失",
        "挂失以后补卡要多久",
        "临时挂失和正式挂失有什么区别",
        weight=1.5,
    ),
    _consult(
        "consult_cc_repayment",
        "信用卡还款日和还款方式",
        Business.CREDIT_CARD,
        "信用卡还款日是哪天",
        "信用卡最低还款是多少",
        "怎么设置信用卡自动还款",
        weight=2.5,
        segments=PERSONAL_ONLY,
    ),
    _consult(
        "consult_cc_limit",
        "信用卡提额",
        Business.CREDIT_CARD,
        "信用卡怎么提额",
        "临时额度怎么申请",
        "额度调整多久生效",
        segments=PERSONAL_ONLY,
    ),
    _consult(
        "consult_deposit_rate",
        "存款利率",
        Business.WEALTH,
        "三年定期利率现在多少",
        "大额存单还有额度吗",
        "整存整取和零存整取哪个划算",
    ),
    _consult(
        "consult_statement",
        "流水和存款证明",
        Business.DEBIT_CARD,
        "怎么打印银行流水",
        "怎么开存款证明",
        "手机上能导出交易明细吗",
    ),
    _consult(
        "consult_password_reset",
        "密码重置",
        Business.MOBILE_BANKING,
        "登录密码忘了怎么重置",
        "交易密码输错锁了怎么办",
        "密码锁定多久自动解开",
        weight=2.0,
    ),
    _consult(
        "consult_wealth_products",
        "理财产品咨询",
        Business.WEALTH,
        "最近有什么稳健一点的理财",
        "{product}什么时候开放申购",
        "理财产品的风险等级在哪看",
        segments={Segment.PRIVATE_BANKING: 6.0, Segment.CORPORATE: 0.0},
    ),
    _consult(
        "consult_loan_apply",
        "贷款申请条件",
        Business.LOAN,
        "消费贷怎么申请",
        "公积金贷款需要什么材料",
        "房贷利率现在是多少",
    ),
    _consult(
        "consult_transfer_time",
        "转账到账时间",
        Business.TRANSFER,
        "跨行转账多久到账",
        "周末转账能实时到吗",
        "大额转账怎么操作",
        weight=1.5,
    ),
    _consult(
        "consult_overseas",
        "境外用卡",
        Business.CREDIT_CARD,
        "出国刷卡要开通什么",
        "境外取现手续费多少",
        "去日本用哪张卡划算",
    ),
    _consult(
        "consult_digital_rmb",
        "数字人民币钱包",
        Business.MOBILE_BANKING,
        "数字人民币钱包怎么开",
        "数币钱包怎么绑你们的卡",
        "数字人民币能在哪里用",
    ),
    _consult(
        "consult_pension_account",
        "个人养老金账户",
        Business.WEALTH,
        "个人养老金账户怎么开",
        "养老金账户每年能存多少",
        "养老金账户的钱什么时候能取",
    ),
    _consult(
        "consult_corporate_receipt",
        "企业网银回单和对公业务",
        Business.CORPORATE,
        "企业网银电子回单在哪下载",
        "对公账户年检需要什么",
        "代发工资怎么签约",
        segments={Segment.CORPORATE: 40.0, Segment.ELDERLY: 0.0},
    ),
    _consult(
        "consult_update_info",
        "修改预留信息",
        Business.DEBIT_CARD,
        "怎么修改预留手机号",
        "身份证换了要去更新吗",
        "地址变了在哪里改",
    ),
    _consult(
        "consult_social_security_card",
        "社保卡领取和查询",
        Business.DEBIT_CARD,
        "社保卡在哪里领",
        "社保卡能在手机上查余额吗",
        "社保卡丢了怎么办",
        segments={Segment.ELDERLY: 3.0},
    ),
    _consult(
        "consult_close_account",
        "销户",
        Business.DEBIT_CARD,
        "不用的卡怎么销户",
        "信用卡怎么注销",
        "销户要本人去吗",
    ),
)

PRAISES: tuple[Topic, ...] = (
    Topic(
        key="praise_agent",
        kind=PRAISE,
        title="表扬坐席",
        business=Business.SERVICE,
        gist="表扬坐席耐心专业",
        weight=3.0,
        phrasings=(
            "表扬一下工号{agent}的客服，很耐心地帮我处理了{thing}",
            "刚才接电话的小姑娘服务特别好，讲得清清楚楚",
            "坐席{agent}一次就帮我解决了，点赞",
            "客服态度很好，还主动提醒我防范诈骗",
            "非常感谢客服帮我追回转错的{amount}",
        ),
    ),
    Topic(
        key="praise_new_feature",
        kind=PRAISE,
        title="点赞新功能",
        business=Business.MOBILE_BANKING,
        gist="点赞手机银行新功能",
        weight=2.5,
        phrasings=(
            "新版APP的{feature}很好用，点赞",
            "{feature}上线了，方便多了",
            "现在转账可以刷脸，比以前快多了",
            "APP改版后界面清爽了不少，找功能容易多了",
        ),
    ),
    Topic(
        key="praise_branch_staff",
        kind=PRAISE,
        title="表扬网点员工",
        business=Business.BRANCH,
        gist="表扬网点员工",
        weight=2.0,
        segments={Segment.ELDERLY: 2.0},
        phrasings=(
            "{branch}的大堂经理很热心，帮我妈把社保卡激活了",
            "网点上门服务帮卧床的老人办了业务，非常感谢",
            "{branch}柜员业务熟练，十分钟就办完了",
            "网点的工作人员手把手教我用手机银行，很有耐心",
        ),
    ),
    Topic(
        key="praise_robot",
        kind=PRAISE,
        title="机器人回答准确",
        business=Business.SERVICE,
        gist="智能客服回答准确",
        phrasings=(
            "智能客服这次回答得挺准，直接告诉我怎么操作",
            "机器人客服比以前聪明多了",
            "在线客服秒回，问题一下就解决了",
        ),
    ),
    Topic(
        key="praise_fast_resolution",
        kind=PRAISE,
        title="问题处理及时",
        business=Business.SERVICE,
        gist="问题处理及时",
        phrasings=(
            "投诉的问题第二天就有人回电处理了，效率很高",
            "转账的问题很快就查清楚了，谢谢",
            "{thing}的事当天就办好了，给你们点赞",
        ),
    ),
)

ONEOFF_SUBJECTS: tuple[tuple[str, Business], ...] = (
    ("保管箱续租", Business.BRANCH),
    ("外币现钞兑换", Business.OTHER),
    ("存折补登", Business.DEBIT_CARD),
    ("ETC扣费", Business.CREDIT_CARD),
    ("公积金提取", Business.LOAN),
    ("代发工资延迟", Business.CORPORATE),
    ("支票挂失", Business.CORPORATE),
    ("境外汇款退汇", Business.TRANSFER),
    ("遗产继承取款", Business.BRANCH),
    ("校园卡充值", Business.DEBIT_CARD),
    ("燃气费代扣", Business.DEBIT_CARD),
    ("电子回单格式", Business.CORPORATE),
    ("贵金属回购", Business.WEALTH),
    ("基金定投扣款", Business.WEALTH),
    ("储蓄国债购买", Business.WEALTH),
    ("养老金账户转移", Business.WEALTH),
    ("房贷利率重定价", Business.LOAN),
    ("车贷抵押解押", Business.LOAN),
    ("留学汇款", Business.TRANSFER),
    ("存款证明开具", Business.DEBIT_CARD),
    ("工资卡跨行归集", Business.TRANSFER),
    ("境外消费退款", Business.CREDIT_CARD),
    ("商户收款码费率", Business.CORPORATE),
    ("纪念币预约", Business.BRANCH),
    ("老人代理取款", Business.BRANCH),
    ("残损币兑换", Business.BRANCH),
    ("外籍人士开户", Business.DEBIT_CARD),
    ("学生账户开立", Business.DEBIT_CARD),
    ("银行卡磁条损坏", Business.DEBIT_CARD),
    ("快捷支付解绑", Business.TRANSFER),
    ("网点停车位", Business.BRANCH),
    ("叫号机故障", Business.BRANCH),
    ("短信通知服务费", Business.DEBIT_CARD),
    ("小额账户管理费", Business.DEBIT_CARD),
    ("久悬户激活", Business.DEBIT_CARD),
    ("二类户绑定", Business.MOBILE_BANKING),
    ("亲情账户设置", Business.MOBILE_BANKING),
    ("云闪付绑卡", Business.TRANSFER),
    ("征信异议处理", Business.LOAN),
    ("保险退保", Business.WEALTH),
    ("积存金", Business.WEALTH),
    ("手机号销号后解绑", Business.MOBILE_BANKING),
    ("APP活动奖品未发放", Business.MOBILE_BANKING),
    ("抽奖活动规则", Business.MOBILE_BANKING),
    ("信用卡邮寄地址", Business.CREDIT_CARD),
    ("纸质账单寄送", Business.CREDIT_CARD),
    ("转账附言显示", Business.TRANSFER),
    ("第三方支付限额", Business.TRANSFER),
)

ONEOFF_PHRASINGS = (
    "{subject}的事情办了{times}都没办好，能不能给个明确答复",
    "关于{subject}，网点和客服说法都不一样",
    "{subject}出了问题，{date}去问到现在也没结果",
    "想投诉一下{subject}，处理得太慢了",
    "{subject}这块你们有没有专人负责？我找不到人",
    "{subject}收费不合理，要求给个解释",
    "{subject}手续太复杂了，我跑了{times}",
)


def _oneoff(index: int, subject: str, business: Business) -> Topic:
    phrasings = tuple(p.replace("{subject}", subject) for p in ONEOFF_PHRASINGS)
    return Topic(
        key=f"oneoff_{index:02d}",
        kind=ONEOFF,
        title=subject,
        business=business,
        gist=f"{subject}办理遇到问题",
        queries=(subject,),
        phrasings=phrasings,
    )


ONEOFFS: tuple[Topic, ...] = tuple(_oneoff(i, s, b) for i, (s, b) in enumerate(ONEOFF_SUBJECTS, start=1))
ALL_TOPICS: dict[str, Topic] = {t.key: t for t in (*SCENARIOS, *CONSULTS, *PRAISES, *ONEOFFS)}

SLOTS: dict[str, tuple[str, ...]] = {
    "amount": ("500元", "1200元", "3000元", "5000元", "8800元", "2万元", "3.5万", "5万块", "12万", "680元"),
    "date": ("11号", "上周三", "前天", "昨天下午", "这周一", "月初", "上个月25号", "周末"),
    "ver": ("8.4.0", "8.4.0", "8.4.1", "8.3.1"),
    "branch": ("朝阳支行", "城南支行", "高新区支行", "人民路支行", "开发区支行", "西湖支行", "火车站网点"),
    "dur": ("四十分钟", "半个多小时", "一个多小时", "二十多分钟", "快一个小时", "十五分钟"),
    "days": ("三天", "五个工作日", "一个星期", "十来天", "两周", "半个月"),
    "times": ("五六次", "七八遍", "十几次", "好几次", "三次", "无数次"),
    "fee": ("368元", "1200多块", "85元", "600元", "2400元", "几百块"),
    "limit": ("5000元", "2000块", "一万", "5万", "500元"),
    "product": ("稳享180天", "季季盈3号", "悦享周期30天", "安鑫一年期", "新客专享理财", "固收增强1号"),
    "phone_model": ("华为Mate60", "iPhone 15", "小米14", "OPPO Reno11", "vivo X100", "荣耀90", "iPhone 12"),
    "agent": ("1035", "2261", "3178", "0896", "5120", "4307"),
    "topic": ("信用卡还款", "挂失", "转账限额", "账单分期", "查流水", "修改手机号"),
    "months": ("两个月", "三个月", "下个季度", "明年"),
    "thing": ("信用卡分期", "挂失补卡", "转账查询", "账户解冻", "社保卡激活", "密码重置"),
    "feature": ("大字版", "语音转账", "分期计算器", "一键挂失", "网点排队查询", "到账提醒"),
    "n": ("十几", "二十多", "三十来", "七八"),
    "role": ("客服坐席", "大堂经理", "柜员", "理财经理", "在线客服"),
}

_FIELDS: dict[str, tuple[str, ...]] = {}


def _fields(template: str) -> tuple[str, ...]:
    cached = _FIELDS.get(template)
    if cached is None:
        cached = tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)
        _FIELDS[template] = cached
    return cached


def _fill(template: str, rng: random.Random, **given: str) -> str:
    values = {name: given[name] if name in given else rng.choice(SLOTS[name]) for name in _fields(template)}
    return template.format_map(values) if values else template


class _Weighted(Generic[T]):
    """A weighted choice with precomputed cumulative weights."""

    def __init__(self, weights: Iterable[tuple[T, float]]):
        pairs = [(item, w) for item, w in weights if w > 0]
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(w for _, w in pairs))
        self.total = self.cum[-1]
        # An infinite last bound keeps float rounding from ever picking past the last item.
        self.cum[-1] = math.inf

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect(self.cum, rng.random() * self.total)]


def _segment_mix(topic: Topic) -> _Weighted[Segment]:
    return _Weighted((s, w * topic.segments.get(s, 1.0)) for s, w in DEFAULT_SEGMENTS.items())


SEGMENT_MIX: dict[str, _Weighted[Segment]] = {key: _segment_mix(t) for key, t in ALL_TOPICS.items()}
KIND_PICK: dict[Channel, _Weighted[str]] = {c: _Weighted(zip(KINDS, mix, strict=True)) for c, mix in KIND_MIX.items()}
CONSULT_PICK = _Weighted((t, t.weight) for t in CONSULTS)
PRAISE_PICK = _Weighted((t, t.weight) for t in PRAISES)

# --- styles -----------------------------------------------------------------------------------------------

COLLOQUIAL, SHORT, ASR, SOCIAL, TICKET, REGULATOR = "口语", "短句", "ASR转写", "社交媒体", "工单", "监管转送"
STAFF, ELDERLY, TRADITIONAL, MIXED_EN = "员工反馈", "老年", "繁体", "中英混合"
STYLES = (COLLOQUIAL, SHORT, ASR, SOCIAL, TICKET, REGULATOR, STAFF, ELDERLY, TRADITIONAL, MIXED_EN)

STYLE_MIX: dict[Channel, _Weighted[str]] = {
    Channel.ROBOT: _Weighted([(SHORT, 0.6), (COLLOQUIAL, 0.32), (MIXED_EN, 0.05), (TRADITIONAL, 0.03)]),
    Channel.PHONE: _Weighted([(ASR, 0.7), (TICKET, 0.3)]),
    Channel.ONLINE: _Weighted([(COLLOQUIAL, 0.82), (MIXED_EN, 0.1), (TRADITIONAL, 0.05), (SHORT, 0.03)]),
    Channel.APP_FEEDBACK: _Weighted([(COLLOQUIAL, 0.72), (MIXED_EN, 0.22), (TRADITIONAL, 0.06)]),
    Channel.SOCIAL: _Weighted([(SOCIAL, 1.0)]),
    Channel.BRANCH_BOOK: _Weighted([(COLLOQUIAL, 1.0)]),
    Channel.SURVEY: _Weighted([(COLLOQUIAL, 1.0)]),
    Channel.STAFF: _Weighted([(STAFF, 1.0)]),
    Channel.COMPLAINT: _Weighted([(TICKET, 1.0)]),
    Channel.REGULATOR: _Weighted([(REGULATOR, 1.0)]),
}
ELDERLY_VOICE_SHARE = 0.6

OPENERS = {
    RECURRING: ("", "", "", "你好，", "您好，", "喂，", "我想反映个问题，", "说一下，", "投诉！"),
    ONEOFF: ("", "", "你好，", "您好，", "我想反映个问题，"),
    CONSULT: ("", "", "你好，", "请问", "问一下，", "您好，想咨询一下，"),
    PRAISE: ("", "", "想表扬一下，", "说句好话，"),
}
CLOSERS = {
    RECURRING: (
        "",
        "。",
        "！",
        "，怎么回事？",
        "，麻烦尽快处理。",
        "，太耽误事了。",
        "，你们到底管不管？",
        "，希望尽快给个说法。",
        "，真的很无语。",
    ),
    ONEOFF: ("", "。", "，麻烦尽快处理。", "，希望给个说法。"),
    CONSULT: ("", "？", "？谢谢", "，麻烦告诉我一下"),
    PRAISE: ("", "！", "，谢谢！", "，辛苦了。", "，给你们点个赞。"),
}
SHORT_SUFFIXES = ("", "", "？", " 转人工", "！！", "啊")
QUESTION_WORDS = ("怎么", "什么", "吗", "哪", "多少", "多久")

ELDERLY_OPENERS = (
    "我年纪大了，",
    "我今年七十多了，",
    "我是老年人，眼睛不好，",
    "孩子不在身边，",
    "我一个老太太，",
    "老头子我",
    "我快八十了，",
)
ELDERLY_CLOSERS = {
    RECURRING: ("，你们能不能照顾一下老年人", "，我实在弄不明白", "，能不能派人教教我", ""),
    ONEOFF: ("，我实在弄不明白", ""),
    CONSULT: ("，你讲慢一点", "，我记性不好你再说一遍", ""),
    PRAISE: ("，真是好孩子", "，谢谢你们", ""),
}

ASR_FILLERS = ("嗯", "那个", "就是说", "呃", "然后", "就是", "这个")
ASR_HOMOPHONES = (
    ("验证码", "验证吗"),
    ("登录", "登陆"),
    ("转账", "转帐"),
    ("赎回", "树回"),
    ("闪退", "闪腿"),
    ("U盾", "优盾"),
    ("积分", "鸡分"),
    ("限额", "线额"),
    ("社保卡", "社保咔"),
    ("年费", "连费"),
)
CLAUSE_BREAK = re.compile(r"[，。？！、；,?!]+")

SOCIAL_PLATFORMS = ("微博", "小红书", "抖音", "黑猫投诉", "微信公众号留言", "今日头条")
SOCIAL_RANTS = (
    "真的服了",
    "无语",
    "心态崩了",
    "这服务绝了",
    "建议大家避雷",
    "还能不能好了",
    "有同样遭遇的吗",
    "离谱",
    "打工人太难了",
)
SOCIAL_TEMPLATES = (
    "#{tag}# {text}，{rant}@{bank}",
    "@{bank}客服 {text}？？{rant}",
    "吐槽一下{bank}：{text}。{rant} #{tag}#",
    "{text}……{rant}，有没有人一样的 #{tag}#",
    "【避雷】{text}，{rant}。@{bank}",
)
SOCIAL_PRAISE_TEMPLATES = ("#{tag}# {text}，这次体验不错 @{bank}", "给@{bank} 点个赞：{text}")

TICKET_NEGATIVE = (
    "客户来电反映{third}。客户要求{demand}。",
    "客户来电反映：{third}，情绪较激动，要求{demand}。",
    "【投诉】客户称{third}，已安抚并告知处理时限，客户要求{demand}。",
    "客户致电投诉{gist}。经了解，{third}。客户诉求：{demand}，已提交后台处理。",
    "客户反映{gist}，具体为：{third}。客户要求{demand}，并表示如不解决将向监管投诉。",
    "来电小结：{third}；客户诉求：{demand}；处理：已记录并转办。",
)
TICKET_CONSULT = (
    "客户来电咨询{gist}，已解答，客户认可。",
    "客户咨询{gist}，坐席已告知办理渠道和所需材料。",
    "来电小结：咨询{gist}，已按知识库答复。",
)
TICKET_PRAISE = ("客户来电表扬：{third}。", "来电小结：客户致电表扬，称{third}。")

REGULATOR_TEMPLATES = (
    "12378转办：投诉人反映{third}。投诉人诉求：{demand}。请于10个工作日内核实处理并反馈。",
    "【监管转送】国家金融监督管理总局12378热线转来：消费者称{third}，要求{demand}。",
    "12378转办工单（编号{ref}）：来电人反映{gist}，具体情况为{third}，诉求为{demand}。",
    "金融消费者经12378热线投诉：{third}。消费者要求{demand}，并对此前处理结果不满意。",
    "12378热线转办单：金融消费者反映{third}，诉求：{demand}。请核实后直接答复消费者。",
    "12378转办：消费者反映在我行{gist}，{third}，诉求：{demand}。",
)

STAFF_FRONT = (
    "这周接到不少客户反映{gist}，我一个班就接了{n}通，建议{suggestion}",
    "网点一线反馈：最近来问{gist}的客户明显变多，老年客户尤其多，建议{suggestion}",
    "坐席反馈：客户反复来电说{gist}，现有话术解释不清，建议{suggestion}",
    "我是{role}，最近经常有客户说{third}，我们这边处理不了，希望{suggestion}",
    "一线意见：{gist}已经成了高频问题，客户情绪比较大，建议{suggestion}",
    "今天又有{n}个客户来说{gist}，每次都要解释很久，建议{suggestion}",
)
STAFF_BACK = (
    "作为行内员工我自己也碰到了：{phrasing}，建议{suggestion}",
    "运营后台发现{gist}相关的差错处理量上升，建议{suggestion}",
    "科技条线反馈：{gist}的问题近期工单增多，建议{suggestion}",
    "中后台员工建议：客户{gist}的情况较多，建议{suggestion}",
)
STAFF_CONSULT = (
    "客户经常来问{gist}，建议{suggestion}",
    "最近咨询{gist}的客户很多，建议{suggestion}",
)
CONSULT_SUGGESTIONS = (
    "在APP首页增加入口",
    "在机器人知识库补充标准答案",
    "在短信里提前告知客户",
    "在网点张贴操作指引",
)
STAFF_ROLES = {
    SourceType.FRONT_STAFF: ("客服坐席", "在线客服", "大堂经理", "柜员", "理财经理"),
    SourceType.BACK_STAFF: ("运营后台", "信息科技部员工", "风险审核岗", "客服质检员"),
}

# "你们" becomes the bank's "我行" only after every customer "我" has become "其".
THIRD_PERSON = (
    ("你们银行", "\0"),
    ("你们行", "\0"),
    ("你们", "\0"),
    ("我们", "他们"),
    ("我妈", "其母亲"),
    ("打断我", "打断客户"),
    ("我的", "其"),
    ("我", "其"),
    ("\0", "我行"),
)

MIXED_REPLACEMENTS = (
    ("手机银行", "手机银行APP"),
    ("验证码", "OTP"),
    ("闪退", "crash"),
    ("系统", "system"),
    ("升级", "update"),
    ("登录", "login"),
    ("客服", "CS"),
    ("问题", "issue"),
    ("体验", "experience"),
)
MIXED_SUFFIXES = (" pls fix asap", " so annoying", " 这个bug什么时候修", " really bad experience", " thx")

_TRADITIONAL_PAIRS = (
    "这這个個们們说說么麼录錄码碼机機现現还還钱錢账賬为為问問题題时時间間没沒费費务務号號电電话話转轉续續过過进進"
    "处處办辦关關开開户戶贷貸对對会會发發后後经經动動应應实實际際让讓认認证證审審总總约約产產级級网網络絡统統设設"
    "见見给給请請谢謝该該试試详詳变變达達选選连連运運远遠适適闭閉门門难難须須预預领領频頻额額风風验驗骗騙龄齡银銀"
    "员員态態复復业業营營销銷骚騷扰擾冻凍结結队隊长長闪閃脸臉识識别別败敗积積规規则則争爭议議单單赎贖导導误誤社社"
    "琐瑣版版盾盾泄洩广廣弹彈页頁样樣来來里裡钟鐘几幾万萬块塊两兩听聽显顯处處济濟币幣汇匯兑兌换換储儲数數据據条條"
    "边邊乱亂杂雜邮郵质質询詢诉訴讲講语語谁誰帮幫妈媽岁歲爷爺儿兒亲親脑腦驱驅书書护護锁鎖线線压壓头頭乐樂计計划劃"
    "损損亏虧险險评評读讀写寫准準确確余餘节節齐齊备備障障紧緊够夠满滿当當众眾层層航航挂掛断斷绕繞欢歡网網点點级級"
    "专專注註册冊奖獎择擇缴繳卫衛宝寶启啟视視价價买買卖賣门門东東车車马馬鸡雞觉覺热熱气氣师師难難"
)
TO_TRADITIONAL = str.maketrans(
    {_TRADITIONAL_PAIRS[i]: _TRADITIONAL_PAIRS[i + 1] for i in range(0, len(_TRADITIONAL_PAIRS), 2)}
)

# --- personal data ----------------------------------------------------------------------------------------

SURNAMES = "张王李赵陈刘杨黄周吴徐孙马朱胡郭何林高罗"
GIVEN_NAMES = (
    "建国",
    "丽华",
    "伟",
    "芳",
    "秀英",
    "志强",
    "敏",
    "静",
    "磊",
    "洋",
    "桂兰",
    "海燕",
    "俊杰",
    "婷",
)
ID_REGIONS = ("110101", "310104", "440305", "330106", "510107", "420102", "320102", "370202")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
CARD_BINS = ("622202", "622848", "621700", "622588", "625908", "436742", "622609", "621661")
EMAIL_USERS = ("zhangwei", "wangfang", "li_na", "chenjg", "liuyang", "zhao.min", "huanglei", "sunjing")
EMAIL_DOMAINS = ("163.com", "qq.com", "126.com", "gmail.com", "sina.com", "outlook.com")
MOBILE_PREFIXES = ("13", "15", "17", "18", "19")


def id_card_checksum(first17: str) -> str:
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def luhn_check_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**9):09d}"


def _id_card(rng: random.Random) -> str:
    birth = date(1945, 1, 1) + timedelta(days=rng.randrange(60 * 365))
    first17 = f"{rng.choice(ID_REGIONS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_card_checksum(first17)


def _bank_card(rng: random.Random) -> str:
    length = rng.choice((16, 19))
    body = rng.choice(CARD_BINS) + "".join(rng.choice(string.digits) for _ in range(length - 7))
    number = body + luhn_check_digit(body)
    if rng.random() < 0.3:
        return " ".join(number[i : i + 4] for i in range(0, length, 4))
    return number


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def _email(rng: random.Random) -> str:
    return f"{rng.choice(EMAIL_USERS)}{rng.randrange(100)}@{rng.choice(EMAIL_DOMAINS)}"


class PiiKind:
    """How one kind of personal data is made and how customers (casual) or staff (formal) write it."""

    def __init__(self, make: Callable[[random.Random], str], casual: tuple[str, ...], formal: tuple[str, ...]):
        self.make, self.casual, self.formal = make, casual, formal

    def fragment(self, rng: random.Random, formal: bool) -> str:
        value = self.make(rng)
        return rng.choice(self.formal if formal else self.casual).format(v=value, s=value[0])


PII_KINDS: dict[str, PiiKind] = {
    "mobile": PiiKind(
        _mobile,
        ("我电话{v}", "联系电话：{v}", "回电请打{v}", "手机号{v}"),
        ("联系电话：{v}", "客户预留手机{v}"),
    ),
    "name": PiiKind(
        _person_name,
        ("我叫{v}", "我是{v}", "我姓{s}，{s}先生", "{s}女士"),
        ("客户姓名：{v}", "客户{s}先生", "客户{s}女士", "客户{s}某某", "投诉人{v}"),
    ),
    "id_card": PiiKind(_id_card, ("身份证号{v}", "证件号码{v}"), ("证件号码：{v}", "身份证号{v}")),
    "bank_card": PiiKind(_bank_card, ("卡号{v}", "完整卡号是{v}", "我的卡{v}"), ("涉及卡号{v}", "卡号：{v}")),
    "email": PiiKind(_email, ("邮箱{v}", "结果发我邮箱{v}"), ("客户邮箱{v}",)),
}
PII_PICK = _Weighted([("mobile", 0.35), ("name", 0.25), ("id_card", 0.15), ("bank_card", 0.15), ("email", 0.10)])
FORMAL_STYLES = frozenset({"工单", "监管转送"})
TRAILING_PUNCTUATION = "。！？!?，, "


# --- text composition -------------------------------------------------------------------------------------


def _third_person(text: str) -> str:
    for first, third in THIRD_PERSON:
        text = text.replace(first, third)
    return text.rstrip("？?。！!")


def _colloquial(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(OPENERS[topic.kind]) + phrasing + rng.choice(CLOSERS[topic.kind])


def _short(topic: Topic, phrasing: str, rng: random.Random) -> str:
    if not topic.queries or rng.random() < 0.15:
        return phrasing
    query = rng.choice(topic.queries)
    if rng.random() < 0.2 and not any(word in query for word in QUESTION_WORDS):
        return query + "怎么办"
    return query + rng.choice(SHORT_SUFFIXES)


def _asr(text: str, rng: random.Random) -> str:
    for right, wrong in ASR_HOMOPHONES:
        if right in text and rng.random() < 0.3:
            text = text.replace(right, wrong)
    clauses = [c for c in CLAUSE_BREAK.split(text) if c]
    spoken = []
    for clause in clauses:
        if rng.random() < 0.35:
            clause = rng.choice(ASR_FILLERS) + " " + clause
        if rng.random() < 0.15 and len(clause) > 4:
            clause = clause[:2] + clause[:2] + clause[2:]
        spoken.append(clause)
    joined = rng.choice((" ", "", " ")).join(spoken)
    return ("客户：" if rng.random() < 0.4 else "") + joined


def _elderly(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(ELDERLY_OPENERS) + phrasing + rng.choice(ELDERLY_CLOSERS[topic.kind])


def _social(topic: Topic, phrasing: str, rng: random.Random) -> str:
    business = topic.business.value if topic.business else ""
    templates = SOCIAL_PRAISE_TEMPLATES if topic.kind == PRAISE else SOCIAL_TEMPLATES
    tag = rng.choice((BANK + business, BANK, "银行套路" if topic.kind != PRAISE else BANK + "APP"))
    return rng.choice(templates).format(tag=tag, text=phrasing, rant=rng.choice(SOCIAL_RANTS), bank=BANK)


def _ticket(topic: Topic, phrasing: str, rng: random.Random) -> str:
    templates = {CONSULT: TICKET_CONSULT, PRAISE: TICKET_PRAISE}.get(topic.kind, TICKET_NEGATIVE)
    return rng.choice(templates).format(
        third=_third_person(phrasing), gist=topic.gist, demand=rng.choice(topic.demands)
    )


def _regulator(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(REGULATOR_TEMPLATES).format(
        third=_third_person(phrasing),
        gist=topic.gist,
        demand=rng.choice(topic.demands),
        ref=f"12378-{rng.randrange(10**7):07d}",
    )


def _staff(topic: Topic, phrasing: str, rng: random.Random, source: SourceType) -> str:
    if topic.kind == CONSULT:
        return _fill(rng.choice(STAFF_CONSULT), rng, gist=topic.gist, suggestion=rng.choice(CONSULT_SUGGESTIONS))
    templates = STAFF_FRONT if source is SourceType.FRONT_STAFF else STAFF_BACK
    role = rng.choice(STAFF_ROLES[source])
    return _fill(
        rng.choice(templates),
        rng,
        gist=topic.gist,
        third=_third_person(phrasing),
        phrasing=phrasing,
        suggestion=rng.choice(topic.suggestions),
        role=role,
    )


def _mixed_english(text: str, rng: random.Random) -> str:
    mixed = text
    for chinese, english in MIXED_REPLACEMENTS:
        if chinese in mixed and rng.random() < 0.6:
            mixed = mixed.replace(chinese, english, 1)
    if mixed == text or rng.random() < 0.3:
        mixed += rng.choice(MIXED_SUFFIXES)
    return mixed


def compose_text(topic: Topic, style: str, rng: random.Random, source: SourceType = SourceType.CUSTOMER) -> str:
    """One voice about `topic` written in `style` (without personal data or channel wrappers)."""
    phrasing = _fill(rng.choice(topic.phrasings), rng)
    if style == SHORT:
        return _short(topic, phrasing, rng)
    if style == ASR:
        return _asr(_colloquial(topic, phrasing, rng), rng)
    if style == ELDERLY:
        return _elderly(topic, phrasing, rng)
    if style == SOCIAL:
        return _social(topic, phrasing, rng)
    if style == TICKET:
        return _ticket(topic, phrasing, rng)
    if style == REGULATOR:
        return _regulator(topic, phrasing, rng)
    if style == STAFF:
        return _staff(topic, phrasing, rng, source)
    if style == TRADITIONAL:
        return _colloquial(topic, phrasing, rng).translate(TO_TRADITIONAL)
    if style == MIXED_EN:
        return _mixed_english(_colloquial(topic, phrasing, rng), rng)
    return _colloquial(topic, phrasing, rng)


def _with_pii(text: str, style: str, rng: random.Random) -> tuple[str, str]:
    kind = PII_PICK.pick(rng)
    formal = style in FORMAL_STYLES
    fragment = PII_KINDS[kind].fragment(rng, formal)
    if formal:
        return f"{text.rstrip(TRAILING_PUNCTUATION)}。{fragment}。", kind
    if rng.random() < 0.3:
        return f"{fragment}，{text}", kind
    return f"{text.rstrip(TRAILING_PUNCTUATION)}，{fragment}", kind


# --- channel metadata -------------------------------------------------------------------------------------

SURVEY_SCORES = {RECURRING: (1, 1, 2, 2, 3), ONEOFF: (1, 2, 3), CONSULT: (3, 4, 4, 5), PRAISE: (5, 5, 5, 4)}
OS_VERSIONS = ("Android 14", "Android 13", "iOS 17.5", "iOS 18.1", "HarmonyOS 4.2")


def _robot_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    negative = topic.kind in (RECURRING, ONEOFF)
    return {
        "session_id": f"RB{rng.randrange(10**10):010d}",
        "turns": rng.randint(1, 12),
        "transferred_to_agent": rng.random() < (0.45 if negative else 0.1),
    }


def _phone_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "call_id": f"CL{when:%Y%m%d}{rng.randrange(10**6):06d}",
        "duration_s": rng.randint(40, 1500),
    }
    if style in (ASR, ELDERLY):
        meta["asr_confidence"] = round(rng.uniform(0.62, 0.97), 2)
    return meta


def _online_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"session_id": f"OL{rng.randrange(10**10):010d}", "turns": rng.randint(2, 30)}


def _app_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "app_version": rng.choice(SLOTS["ver"]),
        "os": rng.choice(OS_VERSIONS),
        "device": rng.choice(SLOTS["phone_model"]),
    }


def _social_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "platform": rng.choice(SOCIAL_PLATFORMS),
        "likes": int(rng.paretovariate(1.2)) - 1,
        "reposts": int(rng.paretovariate(1.6)) - 1,
    }


def _branch_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"branch": rng.choice(SLOTS["branch"])}


def _survey_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "survey_type": "满意度回访",
        "survey_score": rng.choice(SURVEY_SCORES[topic.kind]),
        "scale": 5,
        "surveyed_channel": rng.choice(("电话客服", "在线客服", "网点")),
    }


def _staff_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {"report_no": f"YG{when:%Y%m%d}{rng.randrange(10**4):04d}"}


def _complaint_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "ticket_no": f"TS{when:%Y%m%d}{rng.randrange(10**5):05d}",
        "complaint_level": rng.choice(("一般投诉", "一般投诉", "重要投诉")),
        "sla_days": rng.choice((1, 3, 5)),
    }


def _regulator_meta(rng: random.Random, when: datetime, topic: Topic, style: str) -> dict[str, Any]:
    return {
        "ticket_no": f"JG{when:%Y%m%d}{rng.randrange(10**4):04d}",
        "referral_source": "12378",
        "deadline_days": 10,
    }


CHANNEL_METADATA: dict[Channel, Callable[[random.Random, datetime, Topic, str], dict[str, Any]]] = {
    Channel.ROBOT: _robot_meta,
    Channel.PHONE: _phone_meta,
    Channel.ONLINE: _online_meta,
    Channel.APP_FEEDBACK: _app_meta,
    Channel.SOCIAL: _social_meta,
    Channel.BRANCH_BOOK: _branch_meta,
    Channel.SURVEY: _survey_meta,
    Channel.STAFF: _staff_meta,
    Channel.COMPLAINT: _complaint_meta,
    Channel.REGULATOR: _regulator_meta,
}

# --- timestamps -------------------------------------------------------------------------------------------

HOURLY_CUSTOMER = (
    0.25,
    0.12,
    0.08,
    0.06,
    0.06,
    0.12,
    0.35,
    0.9,
    1.7,
    2.4,
    2.6,
    2.4,
    1.8,
    2.0,
    2.4,
    2.3,
    2.1,
    1.8,
    1.5,
    1.4,
    1.3,
    1.1,
    0.8,
    0.45,
)
HOURLY_OFFICE = tuple(w if 8 <= h < 18 else 0.04 if 18 <= h < 21 else 0.0 for h, w in enumerate(HOURLY_CUSTOMER))
HOURLY_BRANCH = tuple(w if 9 <= h < 17 else 0.0 for h, w in enumerate(HOURLY_CUSTOMER))
DAILY_CUSTOMER = (1.2, 1.1, 1.05, 1.0, 1.0, 0.7, 0.65)
DAILY_OFFICE = (1.1, 1.05, 1.0, 1.0, 1.0, 0.12, 0.08)
DAILY_BRANCH = (1.0, 1.0, 1.0, 1.0, 1.1, 0.8, 0.5)
DAILY_WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0)


def _time_profile(hourly: tuple[float, ...], daily: tuple[float, ...]) -> _Weighted[int]:
    return _Weighted((day * 86400 + hour * 3600, d * h) for day, d in enumerate(daily) for hour, h in enumerate(hourly))


_CUSTOMER_TIMES = _time_profile(HOURLY_CUSTOMER, DAILY_CUSTOMER)
_OFFICE_TIMES = _time_profile(HOURLY_OFFICE, DAILY_OFFICE)
TIME_PROFILE: dict[Channel, _Weighted[int]] = {
    **dict.fromkeys(Channel, _CUSTOMER_TIMES),
    Channel.BRANCH_BOOK: _time_profile(HOURLY_BRANCH, DAILY_BRANCH),
    Channel.SURVEY: _OFFICE_TIMES,
    Channel.STAFF: _OFFICE_TIMES,
    Channel.COMPLAINT: _OFFICE_TIMES,
    Channel.REGULATOR: _time_profile(HOURLY_OFFICE, DAILY_WEEKDAYS),
}

# --- ISO weeks --------------------------------------------------------------------------------------------

ISO_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$")


def parse_iso_week(week: str) -> date:
    """The Monday of an ISO week written "2026-W47" (or "2026W47")."""
    match = ISO_WEEK.match(week.strip().upper())
    if not match:
        raise ValueError(f"not an ISO week like 2026-W47: {week!r}")
    return date.fromisocalendar(int(match[1]), int(match[2]), 1)


def iso_week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def last_complete_iso_week(today: date | None = None) -> str:
    """The last ISO week that ended before `today` (default: today in Asia/Shanghai)."""
    today = today or datetime.now(LOCAL_TZ).date()
    return iso_week_label(today - timedelta(days=7))


# --- the stream -------------------------------------------------------------------------------------------

# Plain strings for the rows: reading .value off an enum member is slow in a 100k-row loop.
VALUE: dict[Any, str] = {m: m.value for enum in (Channel, Segment, SourceType, Business) for m in enum}

POOL_FRACTION = {
    Segment.PERSONAL: 0.45,
    Segment.ELDERLY: 0.07,
    Segment.CORPORATE: 0.04,
    Segment.PRIVATE_BANKING: 0.015,
    Segment.UNKNOWN: 0.04,
}
REPEAT_SOURCES = (Channel.ROBOT, Channel.PHONE, Channel.ONLINE, Channel.APP_FEEDBACK)
# A caller repeats by calling again (the text is a transcript); typed texts move between typed channels.
REPEAT_TARGETS = {
    Channel.PHONE: (Channel.PHONE,),
    Channel.ROBOT: (Channel.ONLINE, Channel.APP_FEEDBACK),
    Channel.ONLINE: (Channel.ROBOT, Channel.APP_FEEDBACK),
    Channel.APP_FEEDBACK: (Channel.ROBOT, Channel.ONLINE),
}
REPEAT_PREFIXES = ("我昨天已经反映过了，", "第二次反映了，", "又来问一次，", "之前说过一次了，")
REPEAT_SUFFIXES = ("，到现在还没解决", "，请尽快回复", "。这是我第二次反映")


class _Customers:
    """Customer-number pools per segment, so some customers come back and segments stay consistent."""

    def __init__(self, rng: random.Random, total_rows: int):
        self.pools = {
            s: [self._new_id(rng, s) for _ in range(max(20, int(total_rows * f)))] for s, f in POOL_FRACTION.items()
        }

    @staticmethod
    def _new_id(rng: random.Random, segment: Segment) -> str:
        if segment is not Segment.CORPORATE and rng.random() < 0.55:
            return _mobile(rng)
        return f"C{rng.randrange(10**8):08d}"

    def pick(self, rng: random.Random, segment: Segment) -> str:
        return rng.choice(self.pools[segment])


def _largest_remainder(shares: Mapping[Channel, float], total: int) -> dict[Channel, int]:
    """Integer counts proportional to `shares`, summing to `total`, at least one per channel."""
    scale = sum(shares.values())
    exact = {c: max(1.0, total * s / scale) for c, s in shares.items()}
    counts = {c: int(v) for c, v in exact.items()}
    by_remainder = sorted(exact, key=lambda c: exact[c] - counts[c], reverse=True)
    surplus = total - sum(counts.values())
    for channel in by_remainder[: max(surplus, 0)]:
        counts[channel] += 1
    for _ in range(-surplus):
        counts[max(counts, key=lambda c: counts[c])] -= 1
    return counts


class _Week:
    """Builds the rows of one ISO week."""

    def __init__(
        self,
        rng: random.Random,
        customers: _Customers,
        monday: date,
        index: int,
        is_last: bool,
        per_week: int,
    ):
        self.rng, self.customers, self.index = rng, customers, index
        self.start = datetime.combine(monday, datetime.min.time())
        self.label = iso_week_label(monday).replace("-", "")
        split = rows_per_week(per_week)
        self.exact_count, self.repeat_count = split["exact_duplicates"], split["repeats"]
        shares = {c: s * rng.uniform(1 - CHANNEL_JITTER, 1 + CHANNEL_JITTER) for c, s in CHANNEL_SHARES.items()}
        self.channel_counts = _largest_remainder(shares, split["fresh"])
        self.scenario_pick = {c: self._scenario_weights(c) for c in CHANNEL_SHARES}
        self.spike_chance: float = 0.0
        self.spike_pick: _Weighted[Topic] | None = None
        if is_last:
            self.spike_chance, self.spike_pick = self._spike_plan()

    def _scenario_weight(self, topic: Topic, channel: Channel) -> float:
        return topic.weight_in_week(self.index) * topic.affinity.get(channel, 1.0)

    def _scenario_weights(self, channel: Channel) -> _Weighted[Topic]:
        return _Weighted((t, self._scenario_weight(t, channel)) for t in SCENARIOS)

    def _spike_plan(self) -> tuple[float, _Weighted[Topic]]:
        # Spike volume is taken from the non-recurring rows, so other scenarios keep their weekly level.
        recurring = {key: 0.0 for key in SPIKES}
        non_recurring = 0.0
        for channel, count in self.channel_counts.items():
            share = KIND_MIX[channel][0]
            total = self.scenario_pick[channel].total
            for key in SPIKES:
                recurring[key] += count * share * self._scenario_weight(ALL_TOPICS[key], channel) / total
            non_recurring += count * (1 - share)
        extra = {key: (factor - 1) * recurring[key] / non_recurring for key, factor in SPIKES.items()}
        return min(sum(extra.values()), 0.9), _Weighted((ALL_TOPICS[k], v) for k, v in extra.items())

    def rows(self) -> list[dict[str, Any]]:
        channels = [c for c, n in self.channel_counts.items() for _ in range(n)]
        self.rng.shuffle(channels)
        fresh = [self._fresh_row(channel) for channel in channels]
        repeats = self._repeats(fresh)
        exact = [_copy_row(self.rng.choice(fresh)) for _ in range(self.exact_count)]
        rows = sorted(fresh + [r for r, _ in repeats] + exact, key=lambda r: r["created_at"])
        for number, row in enumerate(rows, start=1):
            row["id"] = f"{ID_PREFIX}-{self.label}-{number:06d}"
        for row, origin in repeats:
            row["metadata"]["repeat_of"] = origin["id"]
        for row in rows:
            row["created_at"] = row["created_at"].isoformat(timespec="seconds")
        return rows

    def _pick_topic(self, channel: Channel) -> Topic:
        kind = KIND_PICK[channel].pick(self.rng)
        if kind == RECURRING:
            return self.scenario_pick[channel].pick(self.rng)
        if self.spike_pick is not None and self.rng.random() < self.spike_chance:
            return self.spike_pick.pick(self.rng)
        if kind == CONSULT:
            return CONSULT_PICK.pick(self.rng)
        if kind == PRAISE:
            return PRAISE_PICK.pick(self.rng)
        return self.rng.choice(ONEOFFS)

    def _customer(self, channel: Channel, topic: Topic) -> tuple[Segment, str | None]:
        segment = SEGMENT_MIX[topic.key].pick(self.rng)
        if channel is Channel.SOCIAL:
            return Segment.UNKNOWN, None
        if channel is Channel.STAFF:
            return segment, None
        if channel is Channel.ROBOT and self.rng.random() < ANONYMOUS_ROBOT_SHARE:
            return Segment.UNKNOWN, None
        return segment, self.customers.pick(self.rng, segment)

    def _style(self, channel: Channel, segment: Segment) -> str:
        style = STYLE_MIX[channel].pick(self.rng)
        elderly_can_speak = style in (COLLOQUIAL, ASR, SHORT) and channel is not Channel.SOCIAL
        if segment is Segment.ELDERLY and elderly_can_speak and self.rng.random() < ELDERLY_VOICE_SHARE:
            return ELDERLY
        return style

    def _source_type(self, channel: Channel) -> SourceType:
        if channel is not Channel.STAFF:
            return SourceType.CUSTOMER
        return SourceType.FRONT_STAFF if self.rng.random() < 0.7 else SourceType.BACK_STAFF

    def _text(self, topic: Topic, style: str, channel: Channel, source: SourceType) -> tuple[str, str | None]:
        text = compose_text(topic, style, self.rng, source)
        if style == ELDERLY and channel is Channel.PHONE:
            text = _asr(text, self.rng)
        if channel is Channel.SURVEY and self.rng.random() < 0.5:
            text = "回访中客户表示：" + text
        elif channel is Channel.BRANCH_BOOK and self.rng.random() < 0.3:
            text = "意见簿留言：" + text
        if source is SourceType.CUSTOMER and self.rng.random() < CUSTOMER_PII_CHANCE:
            return _with_pii(text, style, self.rng)
        return text, None

    def _business(self, channel: Channel, topic: Topic) -> str | None:
        missing = MISSING_BUSINESS_SHARE.get(channel, DEFAULT_MISSING_BUSINESS)
        if topic.business is None or self.rng.random() < missing:
            return None
        return VALUE[topic.business]

    def _when(self, channel: Channel) -> datetime:
        offset = TIME_PROFILE[channel].pick(self.rng) + int(self.rng.random() * 3600)
        return self.start + timedelta(seconds=offset)

    def _fresh_row(self, channel: Channel) -> dict[str, Any]:
        topic = self._pick_topic(channel)
        segment, customer_id = self._customer(channel, topic)
        style = self._style(channel, segment)
        source = self._source_type(channel)
        text, pii = self._text(topic, style, channel, source)
        when = self._when(channel)
        metadata = {
            "scenario": topic.key,
            "kind": topic.kind,
            "style": style,
            **CHANNEL_METADATA[channel](self.rng, when, topic, style),
        }
        if pii:
            metadata["pii"] = [pii]
        return {
            "id": "",
            "created_at": when,
            "channel": VALUE[channel],
            "source_type": VALUE[source],
            "customer_id": customer_id,
            "customer_segment": VALUE[segment],
            "business": self._business(channel, topic),
            "text": text,
            "metadata": metadata,
        }

    def _repeats(self, fresh: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        # Originals come from Monday to Friday so that a repeat one or two days later stays in the week.
        latest = self.start + timedelta(days=5)
        candidates = [r for r in fresh if _can_repeat(r) and r["created_at"] < latest] or fresh
        return [self._repeat_of(self.rng.choice(candidates)) for _ in range(self.repeat_count)]

    def _repeat_of(self, origin: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        channel = Channel(origin["channel"])
        if rng.random() < 0.5:
            channel = rng.choice(REPEAT_TARGETS.get(channel, (channel,)))
        later = origin["created_at"] + timedelta(seconds=rng.randrange(3600, 48 * 3600))
        when = min(later, self.start + timedelta(days=7, seconds=-1))
        topic = ALL_TOPICS[origin["metadata"]["scenario"]]
        style = origin["metadata"]["style"]
        metadata = {
            "scenario": topic.key,
            "kind": topic.kind,
            "style": style,
            **CHANNEL_METADATA[channel](rng, when, topic, style),
        }
        if "pii" in origin["metadata"]:
            metadata["pii"] = list(origin["metadata"]["pii"])
        row = {
            **origin,
            "created_at": when,
            "channel": channel.value,
            "text": _reworded(origin["text"], rng),
            "metadata": metadata,
        }
        return row, origin


def _can_repeat(row: dict[str, Any]) -> bool:
    """Customers come back about problems they described, not about a two-word robot query or a thank-you."""
    return (
        bool(row["customer_id"])
        and row["metadata"]["kind"] in (RECURRING, ONEOFF)
        and row["metadata"]["style"] != SHORT
        and Channel(row["channel"]) in REPEAT_SOURCES
    )


def _reworded(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return text
    if roll < 0.75:
        return rng.choice(REPEAT_PREFIXES) + text
    return text.rstrip("。！？") + rng.choice(REPEAT_SUFFIXES)


def _copy_row(row: dict[str, Any]) -> dict[str, Any]:
    copied = dict(row, metadata=dict(row["metadata"]))
    if "pii" in copied["metadata"]:
        copied["metadata"]["pii"] = list(copied["metadata"]["pii"])
    return copied


def rows_per_week(per_week: int) -> dict[str, int]:
    """How each week's `per_week` rows split into fresh rows, repeat contacts and exact duplicates."""
    exact = max(1, per_week * EXACT_DUPLICATES_PER_1000 // 1000) if per_week >= 50 else 0
    repeats = round(per_week * REPEAT_SHARE)
    return {"fresh": per_week - exact - repeats, "repeats": repeats, "exact_duplicates": exact}


def generate(weeks: int = 8, per_week: int = 2000, seed: int = 7, end_week: str | None = None) -> Iterator[dict]:
    """Raw, unmasked ingestion rows: exactly `weeks * per_week` of them, week by week, in time order.

    Repeat contacts and exact duplicates are part of each week's `per_week` rows (see rows_per_week).
    `end_week` defaults to the last complete ISO week; pass it explicitly for reproducible output.
    """
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    if per_week < len(CHANNEL_SHARES):
        raise ValueError(f"per_week must be at least {len(CHANNEL_SHARES)} so that every channel appears each week")
    last_monday = parse_iso_week(end_week or last_complete_iso_week())
    return _stream(weeks, per_week, seed, last_monday)


def _stream(weeks: int, per_week: int, seed: int, last_monday: date) -> Iterator[dict]:
    rng = random.Random(seed)
    customers = _Customers(rng, weeks * per_week)
    for index in range(weeks):
        monday = last_monday - timedelta(weeks=weeks - 1 - index)
        yield from _Week(rng, customers, monday, index, index == weeks - 1, per_week).rows()


# --- writers ----------------------------------------------------------------------------------------------

CSV_FIELDS = (
    "id",
    "created_at",
    "channel",
    "source_type",
    "customer_id",
    "customer_segment",
    "business",
    "text",
    "metadata",
)
BANK_HEADERS: dict[str, str] = {
    "id": "工单编号",
    "created_at": "受理时间",
    "channel": "受理渠道",
    "source_type": "来源类型",
    "customer_id": "客户号",
    "customer_segment": "客群",
    "business": "业务类型",
    "text": "客户诉求",
}


def _open_for_writing(path: str | Path, encoding: str) -> Any:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.open("w", encoding=encoding, newline="")


def write_jsonl(rows: Iterable[dict], path: str | Path) -> int:
    count = 0
    with _open_for_writing(path, "utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _csv_record(row: dict) -> list[str]:
    values = [row.get(name) for name in CSV_FIELDS[:-1]]
    metadata = json.dumps(row.get("metadata") or {}, ensure_ascii=False)
    return ["" if v is None else str(v) for v in values] + [metadata]


def _bank_record(row: dict) -> list[str]:
    # Bank exports write times with a space and leave empty cells empty.
    values = [row.get(name) for name in BANK_HEADERS]
    values[1] = str(values[1]).replace("T", " ")
    return ["" if v is None else str(v) for v in values]


def write_csv(rows: Iterable[dict], path: str | Path, encoding: str = "utf-8-sig", bank_headers: bool = False) -> int:
    """Write rows as CSV; with bank_headers, as a bank export (中文表头, no metadata column)."""
    header = list(BANK_HEADERS.values()) if bank_headers else list(CSV_FIELDS)
    record = _bank_record if bank_headers else _csv_record
    count = 0
    with _open_for_writing(path, encoding) as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow(record(row))
            count += 1
    return count

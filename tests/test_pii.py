import json
import os
import stat
import threading
from pathlib import Path

import pytest

from voc.config import Settings
from voc.pii import (
    CARD,
    EMAIL,
    ID_NUMBER,
    MOBILE,
    NAME,
    PASSPORT,
    id_check_char,
    is_id_number,
    is_old_id_number,
    luhn_valid,
    mask_text,
)
from voc.pii_metadata import kind_of_key, mask_value
from voc.pseudonyms import load_or_create_key, pseudonymize_customer_id


def make_id(first17: str = "11010519491231002") -> str:
    return first17 + id_check_char(first17)


@pytest.mark.parametrize(("text", "token"), [
    ("我的手机13812345678收不到验证码", MOBILE),
    ("电话 138 1234 5678 找我", MOBILE),
    ("+86 139-0000-1111", MOBILE),
    ("号码幺三八幺二三四五六七八", MOBILE),
    ("卡号6222021234567890128被吞了", CARD),
    ("card 6222 0212 3456 7890 128", CARD),
    (f"身份证{make_id()}丢了", ID_NUMBER),
    ("邮箱 zhang.san@example.com 没收到账单", EMAIL),
    ("客户王某某来电反映", NAME),
    ("张先生说他等了很久", NAME),
    ("我叫陈建国，想问一下", NAME),
    ("客户姓名：李小红", NAME),
])
def test_masks_each_kind_and_keeps_the_kind(text: str, token: str) -> None:
    masked = mask_text(text)
    assert token in masked
    assert masked != text


# The forms that were stored in clear (issue "PII masking gaps"): each must be masked, with its kind.
@pytest.mark.parametrize(("text", "token", "raw"), [
    ("手机一三九 一二三四 五六七八收不到短信", MOBILE, "一三九 一二三四 五六七八"),
    ("手机１３９１２３４５６７８收不到短信", MOBILE, "１３９１２３４５６７８"),
    ("打139.1234.5678找我", MOBILE, "139.1234.5678"),
    ("号码壹叁玖壹贰叁肆伍陆柒捌", MOBILE, "壹叁玖壹贰叁肆伍陆柒捌"),
    ("身份证110105 19491231 002X丢了", ID_NUMBER, "110105 19491231 002X"),
    ("身份证１１０１０５１９４９１２３１００２Ｘ丢了", ID_NUMBER, "１１０１０５１９４９１２３１００２Ｘ"),
    ("老身份证110105491231002还能用吗", ID_NUMBER, "110105491231002"),
    ("我的卡6222021234 567890128被吞了", CARD, "6222021234 567890128"),
    ("邮箱zhang.san＠example.com收不到账单", EMAIL, "zhang.san＠example.com"),
    ("我叫李四今天来办卡", NAME, "李四"),
    ("关先生来电投诉", NAME, "关先生"),
    ("欧阳娜娜女士反映", NAME, "欧阳娜娜"),
    ("卡号6222021234567890123被冻结", CARD, "6222021234567890123"),
    # the second round of the security test
    ("座机(021)62345678白天没人", MOBILE, "(021)62345678"),
    ("座机（０２１）６２３４５６７８", MOBILE, "（０２１）６２３４５６７８"),
    ("打021-62345678找我", MOBILE, "021-62345678"),
    ("公司0755 8888 6666", MOBILE, "0755 8888 6666"),
    ("境外打+86 (139) 1234 5678", MOBILE, "+86 (139) 1234 5678"),
    ("手机号 1 3 9 1 2 3 4 5 6 7 8", MOBILE, "1 3 9 1 2 3 4 5 6 7 8"),
    ("回拨1-3-9-1-2-3-4-5-6-7-8", MOBILE, "1-3-9-1-2-3-4-5-6-7-8"),
    ("号码幺 三 九 幺 二 三 四 五 六 七 八", MOBILE, "幺 三 九 幺 二 三 四 五 六 七 八"),
    ("6222021234 567890123 卡被吞了", CARD, "6222021234 567890123"),
    ("卡号是 6222 0212 3456 7890 123", CARD, "6222 0212 3456 7890 123"),
    ("姓名 张伟", NAME, "张伟"),
    ("户名 司马光", NAME, "司马光"),
    ("户名 欧阳娜娜", NAME, "欧阳娜娜"),
    ("联系人 赵六", NAME, "赵六"),
    ("联系人：Zhang San", NAME, "Zhang San"),
    ("护照号E12345678", PASSPORT, "E12345678"),
    ("护照号：EA1234567", PASSPORT, "EA1234567"),
    ("港澳通行证C12345678", PASSPORT, "C12345678"),
    ("台胞证12345678", PASSPORT, "12345678"),
    ("发到zhangsan(at)qq.com", EMAIL, "zhangsan(at)qq.com"),
    ("邮箱 zhang san @ qq . com", EMAIL, "zhang san @ qq . com"),
    ("手机139****5678", MOBILE, "139****5678"),
])
def test_forms_that_leaked_are_masked(text: str, token: str, raw: str) -> None:
    masked = mask_text(text)
    assert token in masked and raw not in masked


@pytest.mark.parametrize("text", [
    "由于某种原因转账失败",
    "订单号20261117000123456金额5000元",
    "我和太太一起去网点",
    "年费300元太贵了",
    "等了45分钟",
    "关于年费的问题，对于这个处理结果不满意",
    "转账5000元，2026年11月3日 10:30 到账",
    "2026-11-03 10:30:00 登录失败",
    "APP升级到8.2.1版本后闪退",
    "打95588转人工排队20分钟",
    "第一二三次都失败了",
    "一三九个人在排队",
    "我和先生一起去网点，向女士道歉的是大堂经理",
    "这位女士和那位先生都在排队",
    "金额1,234,567.89元，分12期",
    "信用卡额度50000元，流水号2026111700012345",
    "两三天了还是一直收不到",
    "我是老客户了，本人对服务很不满意",
    "联系人和电话都填对了，姓名栏也没问题",
    "第1-3季度的账单，每次等10-20分钟",
    "客服电话 95588 或 400-820-0588，请拨打 010-95588",
    "打 9 5 5 8 8 转人工，验证码 1 2 3 4 5 6",
    "版本 10.2.3.4567 闪退，手机银行 8.2.1 (build 20261117)",
    "营业时间 9:00-17:00，2026 11 17 10 30 15 登录",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
    "(2026)12345678号文件，请在(30)分钟内完成，金额(元) 1,234.56",
    "第(1)项 3 5 7 9 11 13 15 17 19 21",
    "卡里余额 12000 元，2026111700012345 这笔转账",
    "电话[手机号]，卡号[银行卡号]，护照号[证件号]，姓名 [姓名]，联系人：[姓名]",
    "姓名 和 电话都对，户名与卡号不符，联系人信息不全，联系人：无",
    "证件类型：护照，护照过期了，2026年12月到期，通行证办理要10个工作日",
    "邮件 at 家里，见附件(at)，手机号码 139****，Email me at home.",
])
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert mask_text(text) == text


def test_card_requires_luhn() -> None:
    assert luhn_valid("6222021234567890128")
    assert not luhn_valid("6222021234567890127")
    assert CARD not in mask_text("流水6222021234567890127")


def test_a_card_or_account_word_makes_any_12_to_19_digits_a_card() -> None:
    for text in ("卡号6222021234567890127", "账号：622202123456", "账户 6217 0000 1234 5678 901",
                 "帐号是62220212345678901", "我的卡6222021234567890127"):
        masked = mask_text(text)
        assert CARD in masked and not any(ch.isdigit() for ch in masked), text
    assert mask_text("卡号12345") == "卡号12345"  # too short to be a card


def test_tail_numbers_are_masked_as_what_they_are_part_of() -> None:
    assert mask_text("尾号1234的卡被冻结") == f"尾号{CARD}的卡被冻结"
    assert mask_text("卡号后四位是一二三四") == f"卡号后四位是{CARD}"
    assert mask_text("手机尾号5678收不到短信") == f"手机尾号{MOBILE}收不到短信"
    assert mask_text("尾号限行") == "尾号限行"


def test_only_the_personal_data_is_replaced() -> None:
    text = "（+86）１３９ １２３４ ５６７８，谢谢！我叫李四今天来的。ＡＢＣ　５０００元"
    assert mask_text(text) == f"（+86）{MOBILE}，谢谢！我叫{NAME}今天来的。ＡＢＣ　５０００元"
    assert mask_text("我的手机号是13912345678一直收不到") == f"我的手机号是{MOBILE}一直收不到"
    assert mask_text("电话+86 139-1234-5678。") == f"电话{MOBILE}。"
    assert mask_text("电话（021）6234-5678转8001") == f"电话{MOBILE}转8001"
    assert mask_text("境外+86 (139) 1234 5678 找我") == f"境外{MOBILE} 找我"
    assert mask_text("手机 1 3 9 1 2 3 4 5 6 7 8，谢谢") == f"手机 {MOBILE}，谢谢"
    assert mask_text("6222021234 567890123 这张卡") == f"{CARD} 这张卡"
    assert mask_text("护照号：EA1234567，姓名 张伟") == f"护照号：{PASSPORT}，姓名 {NAME}"
    assert mask_text("联系人：Zhang San，电话139****5678") == f"联系人：{NAME}，电话{MOBILE}"


@pytest.mark.parametrize("text", [
    "王先生 13900001111 zhang@example.com", "卡号 6222 0212 3456 7890 128，我叫陈建国", "一三九一二三四五六七八",
    "座机(021)62345678 护照号E12345678 联系人：Zhang San zhangsan(at)qq.com 139****5678 1 3 9 1 2 3 4 5 6 7 8",
])
def test_masking_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


def test_names_around_function_words() -> None:
    assert mask_text("关先生说关于年费") == f"{NAME}说关于年费"
    assert mask_text("江苏的李女士") == f"江苏的{NAME}"
    assert mask_text("联系人赵六反映") == f"联系人{NAME}反映"
    assert mask_text("户名：诸葛亮") == f"户名：{NAME}"
    assert mask_text("司马先生和上官婉儿女士") == f"{NAME}和{NAME}"
    assert mask_text("我和太太") == "我和太太"


def test_id_number_needs_a_real_birth_date() -> None:
    assert is_id_number(make_id())
    assert not is_id_number("110105194913310021")
    assert is_old_id_number("110105491231002")
    assert not is_old_id_number("110105491331002") and not is_old_id_number("990105491231002")


def test_several_kinds_in_one_text() -> None:
    masked = mask_text(f"王女士 13900001111 {make_id()} a@b.cn 6222021234567890128")
    for token in (NAME, MOBILE, ID_NUMBER, EMAIL, CARD):
        assert token in masked
    assert not any(ch.isdigit() for ch in masked)


def test_customer_pseudonym_is_stable_keyed_and_never_raw() -> None:
    first = pseudonymize_customer_id("13812345678", "salt")
    assert first == pseudonymize_customer_id(" 13812345678 ", "salt")
    assert first != pseudonymize_customer_id("13812345678", "other-salt")
    assert first is not None and "13812345678" not in first
    assert not any(ch.isdigit() for ch in first) and mask_text(first) == first
    assert pseudonymize_customer_id(first, "salt") == first
    assert pseudonymize_customer_id("", "salt") is None


def test_metadata_is_masked_by_column_name_and_by_content() -> None:
    meta = {
        "联系电话": "010 8888 6666", "手机": 13912345678, "卡号": 6.22202123456789e18, "账号": "62220212",
        "身份证": "110105491231002", "邮箱": "a@b.cn", "客户姓名": "张三", "联系人": "李四",
        "contact": {"phone": "8888-6666", "customerName": "王五", "note": "电话13912345678"},
        "电话列表": ["12345", 13800001111], "附加": '{"手机号": "139 1234 5678", "户名": "赵六"}',
        "备注": 6222021234567890128, "其他": 1.10105194912310e17, "id_card": "x1",
        "工单状态": "处理中", "渠道原值": "微信银行", "priority": 3, "金额": 5000.0, "账户类型": "储蓄",
        "手机银行版本": "8.2.1", "file_name": "a.csv", "is_vip": True, "空电话": "", "timestamp": 1763256000,
    }
    masked = mask_value(meta)
    assert isinstance(masked, dict)
    assert masked["联系电话"] == masked["手机"] == MOBILE
    assert masked["卡号"] == masked["账号"] == masked["备注"] == CARD
    assert masked["身份证"] == masked["其他"] == masked["id_card"] == ID_NUMBER
    assert masked["邮箱"] == EMAIL and masked["客户姓名"] == masked["联系人"] == NAME
    assert masked["contact"] == {"phone": MOBILE, "customerName": NAME, "note": f"电话{MOBILE}"}
    assert masked["电话列表"] == [MOBILE, MOBILE]
    assert json.loads(masked["附加"]) == {"手机号": MOBILE, "户名": NAME}
    kept = ("工单状态", "渠道原值", "priority", "金额", "账户类型", "手机银行版本", "file_name", "is_vip", "空电话",
            "timestamp")
    assert {k: masked[k] for k in kept} == {k: meta[k] for k in kept}
    assert mask_value("13912345678", "联系电话") == MOBILE and mask_value(13912345678) == MOBILE
    for key in ("护照", "护照号", "passport", "passport_no", "passportNumber", "港澳通行证"):
        assert kind_of_key(key) == PASSPORT and mask_value("E12345678", key) == PASSPORT, key
    for key in ("座机", "固话", "landline", "landline_number", "单位座机"):
        assert kind_of_key(key) == MOBILE and mask_value("8888 6666", key) == MOBILE, key
    assert kind_of_key("证件类型") == "" and kind_of_key("证件号") == ID_NUMBER
    assert mask_value({"备注": "护照号E12345678，座机(021)62345678"}) == {"备注": f"护照号{PASSPORT}，座机{MOBILE}"}
    assert mask_value(["我叫李四今天", 5]) == [f"我叫{NAME}今天", 5]


def test_customer_pseudonym_key_is_per_installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOC_PII_SALT", raising=False)
    first = Settings(data_dir=tmp_path / "a")
    key = first.pseudonym_key()
    path = tmp_path / "a" / "pii.key"
    assert path == first.pii_key_path and len(key) == 64 and key != "voc-default-salt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii").strip() == key
    # Reused by every later Settings of this data directory (another process, a restart).
    assert Settings(data_dir=tmp_path / "a").pseudonym_key() == key
    other = Settings(data_dir=tmp_path / "b").pseudonym_key()
    assert other != key
    assert pseudonymize_customer_id("13812345678", key) != pseudonymize_customer_id("13812345678", other)
    # The old default no longer reverses: the pseudonym is not the default-salt one.
    assert pseudonymize_customer_id("13812345678", key) != pseudonymize_customer_id("13812345678", "voc-default-salt")


def test_a_set_salt_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOC_PII_SALT", "a-long-secret-of-this-bank")
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.pseudonym_key() == "a-long-secret-of-this-bank"
    assert not settings.pii_key_path.exists()


def test_the_key_file_is_created_once_under_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pii.key"
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        pseudonymize_customer_id("13812345678", "")


def test_ingestion_pseudonymizes_with_the_installation_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_jsonl
    from voc.ingest import Ingestor
    from voc.storage import Store

    monkeypatch.delenv("VOC_PII_SALT", raising=False)
    settings = Settings(data_dir=tmp_path / "data")
    store = Store(settings.resolved_database_url)
    row: dict[str, object] = {"id": "v1", "created_at": "2026-11-17T09:00:00", "channel": "电话客服",
                              "customer_id": "13812345678", "text": "验证码收不到"}
    Ingestor(store, settings).ingest_file(write_jsonl(tmp_path / "v.jsonl", [row]))
    voice = store.get_voice("v1")
    assert voice is not None
    assert voice.customer_id == pseudonymize_customer_id("13812345678", settings.pseudonym_key())
    assert voice.customer_id != pseudonymize_customer_id("13812345678", "voc-default-salt")

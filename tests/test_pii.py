import pytest

from voc.pii import (
    CARD,
    EMAIL,
    ID_NUMBER,
    MOBILE,
    NAME,
    id_check_char,
    is_id_number,
    luhn_valid,
    mask_text,
    pseudonymize_customer_id,
)


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


@pytest.mark.parametrize("text", [
    "由于某种原因转账失败",
    "订单号20261117000123456金额5000元",
    "我和太太一起去网点",
    "年费300元太贵了",
    "等了45分钟",
])
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert mask_text(text) == text


def test_card_requires_luhn() -> None:
    assert luhn_valid("6222021234567890128")
    assert not luhn_valid("6222021234567890127")
    assert CARD not in mask_text("流水6222021234567890127")


def test_id_number_needs_a_real_birth_date() -> None:
    assert is_id_number(make_id())
    assert not is_id_number("110105194913310021")


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

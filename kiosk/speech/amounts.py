"""Amounts read aloud as money: 20256 fen is 二百零二元五角六分, or "202 yuan 56 fen".

The Chinese reading follows the rules banks use for amounts in words (《支付结算办法》附一
《正确填写票据和结算凭证的基本规定》), in everyday characters instead of the anti-forgery
capitals (一 not 壹, 十 not 拾), as a teller reads an amount out at the counter:

- the yuan are read as a Chinese number: 10 is 十 (not 一十) at the start, 110 一百一十;
  a run of zeros inside the number is one 零 (1005 一千零五, 100050 十万零五十), trailing zeros
  are silent (1100 一千一百);
- 二 everywhere, never 两 (二百, 二千, 二元): 二 is correct in every position while 两 is wrong
  in some (十二, 二十), and it is the digit the receipt prints;
- 角 and 分 follow 元; 零 stands for a skipped unit: 10.05 is 十元零五分 (no 角); when the
  yuan end in zero and 角 follows, the 零 the bank rules allow is said too: 1000.50 is
  一千元零五角, 10.50 十元零五角;
- no 整 at the end (一百元); no yuan at all is 零元, fen alone are 五角, 五分, 五角五分.

The English reading is digits for the speech engine to say as numbers: "1000 yuan 50 fen".
Written by hand: cn2an, the maintained converter, writes the cheque capitals (壹拾元) with
整 and takes a float; it serves as the reference in the tests instead.
"""

from kiosk.money import FEN_PER_YUAN, check_fen

DIGITS_ZH = "零一二三四五六七八九"
# Units inside a group of four digits, highest first, and the groups' own units.
_GROUP_UNITS = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
_GROUPS = ((10**8, "亿"), (10**4, "万"), (1, ""))


def _group_zh(number: int) -> str:
    """Read 1..9999 with 千百十; a run of zeros between digits is one 零, trailing zeros none."""
    out: list[str] = []
    gap = False
    for power, unit in _GROUP_UNITS:
        digit = number // power % 10
        if digit == 0:
            gap = bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        out.append(DIGITS_ZH[digit] + unit)
    return "".join(out)


def number_zh(number: int) -> str:
    """A non-negative whole number in Chinese words: 100050 is 十万零五十."""
    if not 0 <= number < 10**12:
        raise ValueError(f"cannot read {number} as an amount: it is negative or too large")
    if number == 0:
        return DIGITS_ZH[0]
    out: list[str] = []
    skipped = False
    for size, unit in _GROUPS:
        group = number // size if unit == "亿" else number // size % 10**4
        if group == 0:
            skipped = skipped or bool(out)
            continue
        if out and (skipped or group < 1000):
            out.append("零")
        skipped = False
        out.append(_group_zh(group) + unit)
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


def speak_amount_zh(fen: int) -> str:
    """Integer fen read as money in Mandarin: 20256 is 二百零二元五角六分."""
    check_fen(fen)
    yuan, rest = divmod(fen, FEN_PER_YUAN)
    jiao, cents = divmod(rest, 10)
    out: list[str] = []
    if yuan or not rest:
        out.append(number_zh(yuan) + "元")
    if jiao:
        if yuan and yuan % 10 == 0:
            out.append("零")
        out.append(DIGITS_ZH[jiao] + "角")
    if cents:
        if yuan and not jiao:
            out.append("零")
        out.append(DIGITS_ZH[cents] + "分")
    return "".join(out)


def speak_amount_en(fen: int) -> str:
    """Integer fen read as money in English: 100050 is "1000 yuan 50 fen"."""
    check_fen(fen)
    yuan, cents = divmod(fen, FEN_PER_YUAN)
    out: list[str] = []
    if yuan or not cents:
        out.append(f"{yuan} yuan")
    if cents:
        out.append(f"{cents} fen")
    return " ".join(out)


def speak_amount(fen: int, lang: str) -> str:
    """The amount as the voice of the language says it (zh_CN in Mandarin, else English)."""
    return speak_amount_zh(fen) if lang == "zh_CN" else speak_amount_en(fen)

"""Every string the touchscreen shows has a Chinese translation, drawable with the CJK font."""

import ast
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from kiosk import availability
from kiosk.i18n import catalog
from kiosk.ratings import PHONE_INVALID, REASONS
from ui.controller import PAYMENT_STILL_OPEN
from ui.kivy_env import CJK_FONT
from ui.maintenance_desk import LABELS
from ui.screens.resident import SERVICE_COMMITMENT, STATUS_TEXT

UI = Path(__file__).parent.parent / "ui"


def ui_message_ids() -> set[str]:
    """Literal arguments of t(...)/translate(...) and screen titles in ui/, found by parsing."""
    found: set[str] = set()
    for path in UI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("t", "translate")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
            if (
                path.parent.name == "screens"
                and isinstance(node, ast.Assign)
                and any(
                    isinstance(target, ast.Name) and target.id == "title" for target in node.targets
                )
            ):
                if isinstance(node.value, ast.Constant) and node.value.value:
                    found.add(str(node.value.value))
    return found


def all_ids() -> set[str]:
    reasons = {
        value
        for name, value in vars(availability).items()
        if name.isupper() and isinstance(value, str) and name != "__doc__"
    }
    constants = {SERVICE_COMMITMENT, PHONE_INVALID, PAYMENT_STILL_OPEN, *LABELS.values()}
    return (
        ui_message_ids() | reasons | constants | set(REASONS.values()) | set(STATUS_TEXT.values())
    )


def test_every_ui_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    chinese = catalog("zh_CN")
    ids = all_ids()
    assert len(ids) > 100  # the parser really found the screens' strings
    missing = sorted(i for i in ids if i not in chinese)
    assert missing == []
    for message in ids:
        assert sorted(_fields(message)) == sorted(_fields(chinese[message])), message


def _fields(text: str) -> list[str]:
    import string

    return [field for _, field, _, _ in string.Formatter().parse(text) if field]


def _render(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((4, 4), char, font=font, fill=255)
    return image


@pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk is not installed")
def test_the_cjk_font_draws_every_chinese_character_the_screens_use() -> None:
    font = ImageFont.truetype(str(CJK_FONT), 40, index=0)
    missing_glyph = _render(font, "\U0010fffd")  # a private-use code point: the .notdef box
    chinese = catalog("zh_CN")
    chars = {c for message in all_ids() for c in chinese[message] if ord(c) > 0x2E80}
    assert len(chars) > 200
    boxes = [
        c
        for c in sorted(chars)
        if not ImageChops.difference(_render(font, c), missing_glyph).getbbox()
    ]
    assert boxes == []

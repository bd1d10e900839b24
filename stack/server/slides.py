"""One 1280x720 slide per scene: title and key points from the scene's visual_prompt."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from stack.server.script import Scene

WIDTH, HEIGHT = 1280, 720
MARGIN = 90
# Dark backgrounds that white text reads well on; consecutive scenes never share one.
PALETTE = [(24, 54, 104), (116, 38, 46), (26, 96, 72), (84, 52, 120), (128, 78, 20), (22, 92, 112)]
TEXT = (255, 255, 255)
MUTED = (214, 222, 235)
MAX_POINTS = 6


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    # DejaVu (found in the system font folders when installed) covers accents and more scripts;
    # Pillow's built-in font is the fallback that is always there.
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def slide_colour(number: int) -> tuple[int, int, int]:
    return PALETTE[(number - 1) % len(PALETTE)]


def title_and_points(scene: Scene) -> tuple[str, list[str]]:
    """Read "Title: ...\\nKey Points:\\n- ..." loosely; fall back to the narration for what is missing."""
    title, points, loose = "", [], []
    for raw in scene.visual_prompt.splitlines():
        line = raw.strip()
        label, _, rest = line.partition(":")
        if label.strip().lower() == "title" and rest.strip():
            title = rest.strip()
        elif re.match(r"^([-*\u2022]|\d+[.)])\s+", line):
            points.append(re.sub(r"^([-*\u2022]|\d+[.)])\s+", "", line))
        elif line and label.strip().lower() not in ("key points", "points"):
            loose.append(line)
    if not title:
        title = loose.pop(0) if loose else " ".join(scene.narration_text.split()[:8])
    return title, (points or loose)[:MAX_POINTS]


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def render_slide(scene: Scene, total: int) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), slide_colour(scene.id))
    draw = ImageDraw.Draw(image)
    text_width = WIDTH - 2 * MARGIN
    draw.text((MARGIN, 48), f"Scene {scene.id} of {total}  \u00b7  {scene.visual_type}", font=_font(26), fill=MUTED)

    title, points = title_and_points(scene)
    y = 110
    for line in _wrap(draw, title, _font(58), text_width)[:2]:
        draw.text((MARGIN, y), line, font=_font(58), fill=TEXT)
        y += 70
    draw.line((MARGIN, y + 10, WIDTH - MARGIN, y + 10), fill=MUTED, width=3)
    y += 44

    point_font, line_height, bottom = _font(34), 46, HEIGHT - 90
    for point in points:
        lines = _wrap(draw, point, point_font, text_width - 40)
        if y + line_height > bottom:
            break
        # A drawn dot: the built-in font has no bullet glyph.
        draw.ellipse((MARGIN + 4, y + 16, MARGIN + 16, y + 28), fill=TEXT)
        for line in lines:
            if y + line_height > bottom:
                break
            draw.text((MARGIN + 40, y), line, font=point_font, fill=TEXT)
            y += line_height
        y += 14

    # A progress strip along the bottom: where this scene sits in the video.
    strip_y = HEIGHT - 40
    draw.rectangle((MARGIN, strip_y, WIDTH - MARGIN, strip_y + 8), fill=tuple(c // 2 for c in slide_colour(scene.id)))
    draw.rectangle((MARGIN, strip_y, MARGIN + text_width * scene.id // total, strip_y + 8), fill=TEXT)
    return image


def save_slide(scene: Scene, total: int, path: Path) -> Path:
    # Fast PNG compression: the file is read once by ffmpeg and then deleted.
    render_slide(scene, total).save(path, format="PNG", compress_level=1)
    return path

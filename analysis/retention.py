"""What retention (tasks/retention.py) took from a run, as its manifest records it, in words for its reports."""

from __future__ import annotations

from datetime import datetime

PRUNED = "videos_pruned"  # the manifest's key: {"at": ISO time, "files": count, "bytes": total, "keep": N}


def pruned_sentence(entry: dict | None) -> str | None:
    """"videos pruned on 2026-11-27 06:30 UTC (14 files, 12.4 MB), hashes and integrity rows kept"; None for a
    run whose videos were never pruned (or a manifest entry that is not retention's)."""
    if not isinstance(entry, dict) or not entry.get("at"):
        return None
    try:
        when = datetime.fromisoformat(str(entry["at"])).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        when = str(entry["at"])
    files, size = entry.get("files"), entry.get("bytes")
    what = f" ({files} {'file' if files == 1 else 'files'}, {size / 2 ** 20:.1f} MB)" \
        if isinstance(files, int) and isinstance(size, int) else ""
    return f"videos pruned on {when}{what} by retention, hashes and integrity rows kept"

"""What runs were measured with, from their manifests: which runs share a plan, and the settings runs differ in.

Two runs share a PLAN when they used the same profile (its name) with the same workload (documents, levels,
counts) and the same number of rounds or soak duration: their figures measure the same load, so one can be
compared with the other (the deployment option compare_with_previous) and they are counted together by retention
(tasks/retention.py: a profile's `keep_videos_of_runs` counts its own plan's runs only, so the nightly soak never
prunes a smoke or a manual run). Other settings (timeouts, thresholds, retention itself, a description) may
differ within a plan; a comparison names each one that does (`setting_differences`), from each run's manifest
`profile`, which is stored with its secrets masked (and is masked again here).
"""

from __future__ import annotations

import json

from profiles.redact import redact

PLAN_SECTIONS = ("workload",)
# the campaign's plan as the manifest's profile holds it (with --rounds/--duration folded in), with its defaults: a
# run stored before rounds existed has no campaign section and was one round
PLAN_CAMPAIGN = {"rounds": 1, "duration_s": None}
VALUE_WIDTH = 80  # a setting's value shown in a line (a list of documents can be long)


def plan_of(manifest: dict) -> dict:
    """The plan a run's manifest records: its profile's name, workload and rounds or soak duration."""
    profile = manifest.get("profile") if isinstance(manifest.get("profile"), dict) else {}
    campaign = profile.get("campaign") if isinstance(profile.get("campaign"), dict) else {}
    return {"profile": manifest.get("profile_name"), **{section: profile.get(section) for section in PLAN_SECTIONS},
            "campaign": {key: campaign.get(key, default) for key, default in PLAN_CAMPAIGN.items()}}


def same_plan(manifest: dict, other: dict) -> bool:
    return plan_of(manifest) == plan_of(other)


def flat_settings(profile: dict | None, prefix: str = "") -> dict[str, object]:
    """The profile as dotted keys ("workload.concurrency_levels": [1, 2, 5]); a list is one value."""
    flat: dict[str, object] = {}
    for key, value in (profile or {}).items():
        if isinstance(value, dict) and value:
            flat |= flat_settings(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def shown(value: object) -> str:
    """A setting's value in a line: JSON, secrets masked, cut at VALUE_WIDTH."""
    text = redact(json.dumps(value, default=str))
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def setting_differences(profiles: list[dict | None], labels: list[str]) -> list[str]:
    """"workload.concurrency_levels: [1, 2, 5] in A, [1, 2] in B": each setting whose value is not the same in every
    run (the profile's name is said elsewhere; a setting a run's profile lacks reads "absent"); [] where every run
    recorded the same settings, or none recorded any."""
    flats = [flat_settings(profile) for profile in profiles]
    keys = list(dict.fromkeys(key for flat in flats for key in flat if key != "name"))
    lines = []
    for key in keys:
        values = [shown(flat[key]) if key in flat else "absent" for flat in flats]
        if len(set(values)) > 1:
            lines.append(f"{key}: " + ", ".join(f"{value} in {label}"
                                                for value, label in zip(values, labels, strict=True)))
    return lines

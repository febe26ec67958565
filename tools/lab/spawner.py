"""A local-process spawner that keeps KubeSpawner's profile list (for the lab hub only, never production).

What it keeps from KubeSpawner (z2jh `singleuser.profileList`):

- `profile_list`: the same list of dicts (display_name, slug, description, default, kubespawner_override);
- the options form: one radio input per profile, `name="profile"`, `value=<slug>`, inside a
  `<label for="profile-item-<slug>" class="profile js-profile-label">` holding an `<h3>` with the display
  name, as KubeSpawner's form.html renders it, so a browser test picks a profile by its visible name;
- `options_from_form` → `user_options = {"profile": <slug>}`; an unknown slug is refused.

What it records for the tests instead of creating a pod: the chosen profile in `user_options` and the
environment of the server (`LAB_PROFILE_SLUG`, `LAB_PROFILE_DISPLAY_NAME`, `LAB_PROFILE_IMAGE`,
`LAB_PROFILE_OVERRIDE` as JSON); overrides naming a trait this spawner has (cpu_limit, mem_limit,
environment, default_url, ...) are applied, the rest (image, ...) only recorded.

Each user gets `<homes_root>/claim-<username>` as home and working directory, a stand-in for the per-user
PVC `claim-<username>`: it survives stopping and starting the server (and the hub).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import List, Unicode, default

PROFILE_ENV_PREFIX = "LAB_PROFILE_"


def profile_slug(profile: dict[str, Any]) -> str:
    """The profile's slug; like KubeSpawner, derived from the display name when none is given."""
    slug = profile.get("slug")
    if slug:
        return str(slug)
    return re.sub(r"[^a-z0-9]+", "-", str(profile.get("display_name", "")).lower()).strip("-")


def render_profile_form(profiles: list[dict[str, Any]]) -> str:
    """KubeSpawner-shaped options form: radio `profile` = slug, the display name in an <h3> inside the label."""
    if not profiles:
        return ""
    default_slug = default_profile_slug(profiles)
    items = []
    for profile in profiles:
        slug = html.escape(profile_slug(profile), quote=True)
        checked = " checked" if profile_slug(profile) == default_slug else ""
        description = profile.get("description")
        desc_html = f"<p>{html.escape(str(description))}</p>" if description else ""
        items.append(
            f'<label for="profile-item-{slug}" class="profile js-profile-label">'
            f'<div class="radio"><input type="radio" name="profile" id="profile-item-{slug}" value="{slug}"{checked} />'
            f"</div><div><h3>{html.escape(str(profile.get('display_name', slug)))}</h3>{desc_html}</div></label>"
        )
    return '<div class="form-group" id="kubespawner-profiles-list">' + "".join(items) + "</div>"


def default_profile_slug(profiles: list[dict[str, Any]]) -> str:
    for profile in profiles:
        if profile.get("default"):
            return profile_slug(profile)
    return profile_slug(profiles[0])


class LabSpawner(SimpleLocalProcessSpawner):  # type: ignore[misc]
    """SimpleLocalProcessSpawner + KubeSpawner's profile list + a persistent per-user home."""

    user_options: dict[str, Any]  # the base class's trait, annotated for mypy (no class attribute is created)

    profile_list: List[dict[str, Any]] = List(
        config=True,
        help="KubeSpawner-format profiles: display_name, slug, description, default, kubespawner_override.",
    )
    homes_root = Unicode(
        "/tmp/lab-homes",
        config=True,
        help="Directory holding claim-<username> homes (the stand-in for per-user volumes).",
    )

    @default("home_dir")
    def _default_home_dir(self) -> str:
        return f"{self.homes_root}/claim-{self.user.name}"

    @default("options_form")
    def _default_options_form(self) -> str:
        return render_profile_form(self._profiles())

    def _profiles(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.profile_list]

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        profiles = self._profiles()
        if not profiles:
            return {}
        slug = (formdata.get("profile") or [default_profile_slug(profiles)])[0]
        if slug not in {profile_slug(p) for p in profiles}:
            raise ValueError(f"unknown profile {slug!r}")
        return {"profile": slug}

    def selected_profile(self) -> dict[str, Any] | None:
        """The profile named in user_options (or the default one), None without profiles."""
        profiles = self._profiles()
        if not profiles:
            return None
        slug = (self.user_options or {}).get("profile") or default_profile_slug(profiles)
        for profile in profiles:
            if profile_slug(profile) == slug:
                return profile
        raise ValueError(f"unknown profile {slug!r}")

    async def start(self) -> Any:
        profile = self.selected_profile()
        if profile is not None:
            self.user_options = {**(self.user_options or {}), "profile": profile_slug(profile)}
            for key, value in (profile.get("kubespawner_override") or {}).items():
                if self.has_trait(key):
                    setattr(self, key, value)
            self.log.info("Lab spawner: %s starts with profile %s", self.user.name, profile_slug(profile))
        return await super().start()

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        profile = self.selected_profile()
        if profile is not None:
            override = profile.get("kubespawner_override") or {}
            env[PROFILE_ENV_PREFIX + "SLUG"] = profile_slug(profile)
            env[PROFILE_ENV_PREFIX + "DISPLAY_NAME"] = str(profile.get("display_name", ""))
            env[PROFILE_ENV_PREFIX + "IMAGE"] = str(override.get("image", ""))
            env[PROFILE_ENV_PREFIX + "OVERRIDE"] = json.dumps(override, sort_keys=True, default=str)
        return env

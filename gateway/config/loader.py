"""Phase one of config loading: read the main TOML file and the policy files it names.

`load_config` does file I/O and strict validation of the skeleton only; compiling sections into
runtime objects is `gateway.runtime.compile_runtime`. Both run before the gateway serves, and again on
hot reload, where any error keeps the old runtime.
"""

from __future__ import annotations

import glob
import os
import tomllib
from dataclasses import dataclass, field

from gateway.config.schema import POLICY_TABLES, MainConfig
from gateway.config.validate import ConfigError, SourcedRule, validate


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    path: str  # absolute path of the main file
    main: MainConfig
    rules: dict[str, list[SourcedRule]] = field(default_factory=dict)  # table name -> rules
    policy_files: tuple[str, ...] = ()

    @property
    def base_dir(self) -> str:
        return os.path.dirname(self.path)


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(path, "<file>", "file exists") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "<file>", f"valid TOML ({exc})") from None


def load_policy_file(path: str) -> dict[str, list[SourcedRule]]:
    data = _read_toml(path)
    out: dict[str, list[SourcedRule]] = {}
    for table, rules in data.items():
        if table not in POLICY_TABLES:
            raise ConfigError(path, table, f"one of the policy tables {', '.join(POLICY_TABLES)}")
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ConfigError(path, table, f"an array of tables ([[{table}]])")
        out[table] = [SourcedRule(path, f"{table}[{i}]", r) for i, r in enumerate(rules)]
    return out


def load_config(path: str) -> LoadedConfig:
    path = os.path.abspath(path)
    main = validate(MainConfig, _read_toml(path), file=path)
    base = os.path.dirname(path)
    rules: dict[str, list[SourcedRule]] = {t: [] for t in POLICY_TABLES}
    files: list[str] = []
    for pattern in main.policies:
        matched = sorted(glob.glob(os.path.join(base, pattern)))
        for f in matched:
            if f in files:
                continue
            files.append(f)
            for table, items in load_policy_file(f).items():
                rules[table].extend(items)
    for alias, model in main.models.items():
        for t in model.targets:
            if t.provider not in main.providers:
                raise ConfigError(path, f"models.{alias}.targets", f"a provider declared in [providers] (no '{t.provider}')")
        if model.canary is not None and model.canary.target.provider not in main.providers:
            raise ConfigError(path, f"models.{alias}.canary.target",
                              f"a provider declared in [providers] (no '{model.canary.target.provider}')")
        for fb in model.fallbacks:
            if fb not in main.models or fb == alias:
                raise ConfigError(path, f"models.{alias}.fallbacks", f"another declared alias (no '{fb}')")
        if model.shadow is not None and (model.shadow.alias not in main.models or model.shadow.alias == alias):
            raise ConfigError(path, f"models.{alias}.shadow.alias", f"another declared alias (no '{model.shadow.alias}')")
    return LoadedConfig(path=path, main=main, rules=rules, policy_files=tuple(files))

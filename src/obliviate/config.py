"""Validated, serialisable run configurations and config-file loading.

Configs are pydantic models with ``extra="forbid"``; validation errors are
turned into one :class:`ConfigError` that lists every problem and, for an
unknown key, the nearest valid key.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from obliviate.errors import ConfigError
from obliviate.registry import closest


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names of the (nested) model that ``loc`` points into."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def validate(model: type[BaseModel], data: dict[str, Any], *, source: str = "config") -> Any:
    """Validate ``data`` against ``model``; raise one ConfigError listing all problems."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            if err["type"] == "extra_forbidden":
                valid = _fields_at(model, loc)
                hint = closest(str(loc[-1]), valid)
                msg = f"unknown key {where!r}" + (f"; did you mean {hint!r}?" if hint else "")
                if valid:
                    msg += f" Valid keys here: {', '.join(valid)}."
                problems.append(msg)
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"Invalid {source}:", problems) from None


def _toml() -> Any:
    """The TOML parser: ``tomllib`` from Python 3.11, the ``tomli`` backport (same API) on 3.10."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:  # a dependency on 3.10: only a broken install gets here
        raise ConfigError("Reading TOML config files on Python 3.10 needs 'tomli'; "
                          "install it with: pip install tomli (or use a .yaml or .json file).") from None
    return tomli


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML, TOML or JSON config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # binary junk, another encoding, unreadable
        raise ConfigError(f"Cannot read config file {path} as UTF-8 text ({exc}); save it as UTF-8.") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = _toml().loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"Config file {path} must end in .yaml, .yml, .toml or .json.")
    except ConfigError:
        raise
    except Exception as exc:  # parser errors differ per format; all mean "fix the file"
        raise ConfigError(f"Could not parse config file {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of keys to values at the top level.")
    return data


def build_dataclass(config_cls: type, overrides: Any, *, owner: str) -> Any:
    """``config_cls(**overrides)`` for a config dataclass (a method's, a guard's, an attack's).

    Every unknown key is named with its nearest valid one, all at once; values are validated
    and coerced by pydantic where the fields allow it (``"1e-3"`` -> 0.001).
    """
    import dataclasses

    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticValidationError
    from pydantic.errors import PydanticSchemaGenerationError

    overrides = dict(overrides or {})
    valid = [f.name for f in dataclasses.fields(config_cls)]
    problems = []
    for k in overrides:
        if k not in valid:
            hint = closest(k, valid)
            problems.append(f"{k!r} is not a parameter of {owner}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Valid: {', '.join(valid)}.")
    if problems:
        raise ConfigError(f"Invalid configuration for {owner}:", problems)
    try:
        try:
            return TypeAdapter(config_cls).validate_python(overrides)
        except PydanticSchemaGenerationError:  # a field pydantic cannot describe: construct it directly
            return config_cls(**overrides)
    except PydanticValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                    for e in exc.errors()]
        raise ConfigError(f"Invalid configuration for {owner}:", problems) from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid configuration for {owner}: {exc}") from None

"""What every stage configuration shares: YAML loading with overrides, renamed keys, the device.

Each stage keeps one pydantic model (``TrainConfig``, ``EmbedConfig``, ``TemporalConfig``,
``LensConfig``, ``CompareConfig``) that the command line, YAML files and the Python API all use.
The models here add the same way in: :meth:`StageConfig.from_yaml` reads a YAML mapping (safely,
size-bounded) and applies keyword overrides on top, nested mappings merged key by key.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from phenolapse.errors import ConfigError
from phenolapse.io_utils import read_yaml_mapping

M = TypeVar("M", bound=BaseModel)

DEVICE_HELP = "``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."


def check_device(value: str) -> str:
    """Accept ``auto``, ``cpu``, ``cuda`` and ``cuda:N``; anything else is a ``ValueError``."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


Device = Annotated[str, AfterValidator(check_device)]
"""A torch device name as every stage accepts it (default ``auto`` everywhere)."""


def device_field(what: str) -> Any:
    """The ``device`` option of a stage: ``what`` runs there, ``auto`` by default."""
    return Field(default="auto", description=f"{what}: {DEVICE_HELP}")


def merge_options(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with every override that is not None; nested mappings merge key by key.

    Neither argument is modified.
    """
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = merge_options(old, value)
        elif isinstance(value, Mapping):
            out[key] = merge_options({}, value)
        else:
            out[key] = value
    return out


def validation_lines(exc: ValidationError) -> str:
    """One indented line per error of ``exc``: the dotted key, then what is wrong with it."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def validate_config(model: type[M], data: Mapping[str, Any], *, source: str) -> M:
    """Validate ``data`` into ``model``; a bad key or value raises ConfigError naming ``source``."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: invalid {model.__name__} setting(s):\n" + validation_lines(exc)
        ) from exc


def read_config_mapping(path: str | Path, *, section: str | None = None) -> dict[str, Any]:
    """The mapping of a YAML file; with ``section``, that key of a whole-run configuration.

    A stage command can thus read either its own configuration file or the ``section`` of a
    ``phenolapse run`` configuration.
    """
    data = read_yaml_mapping(path, what=f"{section or 'stage'} configuration")
    if section is not None and isinstance(data.get(section), dict):
        return dict(data[section])
    return data


class StageConfig(BaseModel):
    """Base of the stage configurations: unknown keys refused, YAML loading, renamed keys.

    ``renamed`` maps an old option name to its current one: the old name is still read (with a
    :class:`DeprecationWarning`) from YAML files, keyword arguments and the command line.
    """

    model_config = ConfigDict(extra="forbid")

    renamed: ClassVar[dict[str, str]] = {}
    section: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if not cls.renamed or not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in cls.renamed.items():
            if old in data:
                warnings.warn(
                    f"{cls.__name__}: option {old!r} is now called {new!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                value = data.pop(old)
                data.setdefault(new, value)
        return data

    @classmethod
    def from_mapping(
        cls: type[M], data: Mapping[str, Any], *, source: str = "configuration", **overrides: Any
    ) -> M:
        """Validate a mapping (e.g. parsed YAML); ``overrides`` that are not None win over it."""
        return validate_config(cls, merge_options(data, overrides), source=source)

    @classmethod
    def from_yaml(cls: type[M], path: str | Path, **overrides: Any) -> M:
        """Read a YAML file (a mapping of the fields); ``overrides`` that are not None win.

        Nested options merge key by key (``preprocess={"image_size": 64}`` keeps the file's other
        preprocessing keys). A whole-run configuration is accepted too: its stage section is read.
        """
        section = getattr(cls, "section", None)
        data = read_config_mapping(path, section=section)
        return validate_config(cls, merge_options(data, overrides), source=str(path))

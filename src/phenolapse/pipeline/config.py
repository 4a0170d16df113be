"""One validated configuration for a whole run (``phenolapse run CONFIG.yaml``).

Every stage keeps its own configuration model (shared with its command and its Python function);
this file nests them. Defaults are the reference's settings. Relative paths in a YAML file are taken
relative to the file's folder. Unknown keys, wrong types and missing input paths are rejected before
any work starts, with the key named.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from phenolapse.comparison.config import CompareConfig
from phenolapse.data.imageio import PreprocessConfig
from phenolapse.embedding.config import EmbedConfig
from phenolapse.errors import ConfigError
from phenolapse.io_utils import atomic_write, check_yaml_size, read_yaml_mapping
from phenolapse.lens.config import LensConfig
from phenolapse.stage_config import validation_lines
from phenolapse.temporal.config import TemporalConfig
from phenolapse.training.config import TrainConfig


def lens_autoencoder_error(model: str) -> str:
    """Why the lens cannot run when the run's model, described by ``model``, is not a ConvAE."""
    return (
        f"lens_autoencoder is not set and the run's model is {model}: the lens starts from a "
        "ConvAE, so set lens_autoencoder to ConvAE weights (e.g. the published ones; the model "
        "then serves as F) or turn the lens off (stages.lens: false)"
    )


class SimulateSpec(BaseModel):
    """A simulated screen as input."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["tiny", "small", "paper"] = Field(
        default="tiny", description="``tiny``, ``small`` or ``paper``."
    )
    seed: int = Field(default=0, description="Simulator seed.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Simulator settings that replace the preset's (see ``phenolapse simulate --help``)."
        ),
    )

    @model_validator(mode="after")
    def _check_overrides(self) -> SimulateSpec:
        """Check the overrides against the simulator's options now, not after other work."""
        from phenolapse.data.sim.config import SimulationConfig

        if "seed" in self.overrides:
            raise ValueError("overrides.seed: set screen.simulate.seed instead")
        try:
            SimulationConfig.preset(self.preset, seed=self.seed, **self.overrides)
        except ConfigError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise ValueError(str(exc)) from exc
            lines = [
                f"overrides.{'.'.join(str(p) for p in err['loc'])}: "
                + ("unknown simulator option" if err["type"] == "extra_forbidden" else err["msg"])
                for err in cause.errors()
            ]
            raise ValueError("; ".join(lines)) from exc
        return self


class ScreenConfig(BaseModel):
    """Where the images come from."""

    model_config = ConfigDict(extra="forbid")

    images_dir: Path | None = Field(
        default=None,
        description="Folder of images (searched recursively); give this or ``simulate``.",
    )
    platemap: Path | None = Field(
        default=None, description="Plate-map CSV (plate, well, drug, concentration_um, role)."
    )
    time_zero: str | float | None = Field(
        default=None,
        description="Drug-addition time: hours of elapsed imaging time or an ISO date-time.",
    )
    pattern: str | None = Field(
        default=None,
        description=(
            "Regular expression with named groups for file names the built-in schemes miss."
        ),
    )
    skip_bad: bool = Field(
        default=False,
        description=(
            "Leave out unparseable or unreadable files (listed in ``manifest.skipped.csv``) "
            "instead of stopping."
        ),
    )
    simulate: SimulateSpec | None = Field(
        default=None, description="Simulate a screen instead of reading ``images_dir``."
    )
    growth_exports: list[Path] = Field(
        default_factory=list,
        description=(
            "Incucyte metric exports (or long growth tables) whose confluence the temporal stage "
            "uses instead of measuring it on the images: one file per plate or metric, the plate "
            "named by the export's ``Label:`` line, else by the file name; times are elapsed hours"
            " minus ``time_zero``."
        ),
    )
    growth_platemap: Path | None = Field(
        default=None,
        description=(
            "Plate map of the exports' wells (CSV or Incucyte ``.PlateMap`` XML); default the "
            "screen's plate map."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> ScreenConfig:
        if (self.images_dir is None) == (self.simulate is None):
            raise ValueError("give exactly one of screen.images_dir and screen.simulate")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"screen.pattern is not a valid regular expression: {exc}"
                ) from exc
        if self.growth_exports and self.growth_time_zero() is None and self.time_zero is not None:
            raise ValueError(
                f"screen.time_zero {self.time_zero!r}: with screen.growth_exports it must be a "
                "number of elapsed hours (the exports count elapsed hours)"
            )
        return self

    def growth_time_zero(self) -> float | None:
        """``time_zero`` as elapsed hours (None when unset or a date-time)."""
        if self.time_zero is None:
            return None
        try:
            return float(self.time_zero)
        except ValueError:
            return None


class StagesConfig(BaseModel):
    """Which optional stages run."""

    model_config = ConfigDict(extra="forbid")

    train: bool = Field(
        default=True,
        description="Train the ConvAE on the screen (ignored when ``weights`` is given).",
    )
    temporal: bool = Field(
        default=True, description="Distance to control, DTW clustering, effect annotation."
    )
    lens: bool = Field(default=True, description="Drug classification and the lens.")
    compare: bool = Field(default=True, description="Feature extractors side by side.")
    report: bool = Field(default=True, description="The HTML report.")


class PipelineConfig(BaseModel):
    """Every option of a run."""

    model_config = ConfigDict(extra="forbid")

    output_dir: Path = Field(
        default=Path("phenolapse_out"),
        description="Folder of every output; ``report.html`` lands at its top.",
    )
    title: str = Field(default="phenolapse report", description="Title of the report.")
    screen: ScreenConfig = Field(
        default_factory=lambda: ScreenConfig(simulate=SimulateSpec()),
        description="Input images and plate map.",
    )
    preprocess: PreprocessConfig = Field(
        default_factory=PreprocessConfig,
        description=(
            "Image preprocessing of every stage that reads images (training, embedding, the lens"
            " and the comparison). A stage may set keys of its own ``preprocess`` (e.g."
            " ``lens: {preprocess: {mode: tile}}``): those win over these, the rest come from here."
        ),
    )
    weights: Path | None = Field(
        default=None,
        description=(
            "Use these weights instead of training: a ConvAE (e.g. the published weights) or any "
            "model ``phenolapse train`` wrote (a ResNet needs ``lens_autoencoder`` for the lens)."
        ),
    )
    lens_autoencoder: Path | None = Field(
        default=None,
        description=(
            "ConvAE weights the lens starts from when the run's model is another encoder (a "
            "ResNet trained with simclr, vicreg or dino), which then serves as F; e.g. the "
            "published ConvAE weights."
        ),
    )
    stages: StagesConfig = Field(
        default_factory=StagesConfig, description="Optional stages on or off."
    )
    train: TrainConfig = Field(
        default_factory=TrainConfig, description="Self-supervised training (``phenolapse train``)."
    )
    embed: EmbedConfig = Field(
        default_factory=EmbedConfig, description="Feature extraction (``phenolapse embed``)."
    )
    temporal: TemporalConfig = Field(
        default_factory=TemporalConfig, description="Temporal analysis (``phenolapse temporal``)."
    )
    lens: LensConfig = Field(
        default_factory=LensConfig,
        description="Lens and drug classification (``phenolapse lens``).",
    )
    compare: CompareConfig = Field(
        default_factory=CompareConfig, description="Extractor comparison (``phenolapse compare``)."
    )

    @model_validator(mode="after")
    def _lens_needs_a_convae(self) -> PipelineConfig:
        """A run that trains an encoder other than the ConvAE needs ``lens_autoencoder``."""
        if (
            self.stages.lens
            and self.weights is None
            and self.stages.train
            and self.train.encoder != "convae"
            and self.lens_autoencoder is None
        ):
            encoder = self.train.encoder
            raise ValueError(lens_autoencoder_error(f"a {encoder} (train.encoder: {encoder})"))
        return self

    def stage_config(self, section: str) -> Any:
        """The configuration of stage ``section`` as the run uses it.

        The run's ``preprocess`` is the default of every stage that reads images; the keys a
        stage sets in its own ``preprocess`` win over it.
        """
        stage = getattr(self, section)
        if "preprocess" not in type(stage).model_fields:
            return stage
        own = stage.preprocess if "preprocess" in stage.model_fields_set else None
        if own is None or not own.model_fields_set:
            return stage.model_copy(update={"preprocess": self.preprocess})
        explicit = own.model_dump(include=own.model_fields_set)
        merged = PreprocessConfig.model_validate(self.preprocess.model_dump() | explicit)
        return stage.model_copy(update={"preprocess": merged})

    def check_paths(self) -> None:
        """Raise ConfigError naming the key of any input path that does not exist."""
        checks: list[tuple[str, Path | None]] = [
            ("screen.images_dir", self.screen.images_dir),
            ("screen.platemap", self.screen.platemap),
            ("weights", self.weights),
            ("lens_autoencoder", self.lens_autoencoder),
            ("train.init_weights", self.train.init_weights),
        ]
        checks.append(("compare.weights_dir", self.compare.weights_dir))
        checks += [
            (f"screen.growth_exports[{i}]", p) for i, p in enumerate(self.screen.growth_exports)
        ]
        checks.append(("screen.growth_platemap", self.screen.growth_platemap))
        for key, path in checks:
            if path is not None and not Path(path).exists():
                raise ConfigError(f"{key}: {path} does not exist")
        for i, p in enumerate(self.screen.growth_exports):
            if not Path(p).is_file():
                raise ConfigError(
                    f"screen.growth_exports[{i}]: {p} is not a file (give the export files)"
                )


_STAGES = (TrainConfig, EmbedConfig, LensConfig, CompareConfig)

_PATH_KEYS = (
    ("output_dir",),
    ("weights",),
    ("lens_autoencoder",),
    ("screen", "images_dir"),
    ("screen", "platemap"),
    ("screen", "growth_exports"),
    ("screen", "growth_platemap"),
    ("train", "init_weights"),
    ("compare", "weights_dir"),
)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for keys in _PATH_KEYS:
        node: Any = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(keys[-1])
        if isinstance(value, str):
            node[keys[-1]] = _resolve(value, base)
        elif isinstance(value, list):
            node[keys[-1]] = [_resolve(v, base) if isinstance(v, str) else v for v in value]


def _resolve(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def make_pipeline_config(data: dict[str, Any], *, source: str = "configuration") -> PipelineConfig:
    """Validate a mapping into a :class:`PipelineConfig`; ConfigError names each bad key."""
    check_yaml_size(data, source=source)
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n" + validation_lines(exc)) from exc
    cfg.check_paths()
    return cfg


def load_pipeline_config(path: str | Path, **overrides: Any) -> PipelineConfig:
    """Read a YAML configuration (safe loading) and validate it."""
    path = Path(path)
    data = read_yaml_mapping(path)
    data.update(overrides)
    _resolve_paths(data, path.resolve().parent)
    return make_pipeline_config(data, source=str(path))


# ---------------------------------------------------------------- documented default configuration


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The description of each field of ``model``: its ``Field(description=...)``.

    A field without one falls back to its entry in the numpydoc ``Attributes`` section of the
    model's docstring.
    """
    out = _numpydoc_attributes(model)
    for name, info in model.model_fields.items():
        if info.description:
            out[name] = info.description
    return out


def _numpydoc_attributes(model: type[BaseModel]) -> dict[str, str]:
    doc = inspect.getdoc(model) or ""
    m = re.search(r"^Attributes\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S | re.M)
    if not m:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    for line in m.group(1).splitlines():
        if line and not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",")]
            for n in names:
                out[n] = ""
        elif line.strip():
            for n in names:
                out[n] = (out[n] + " " + line.strip()).strip()
    return out


def _model_type(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if inspect.isclass(arg) and issubclass(arg, BaseModel):
                return arg
    return None


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def commented_yaml(model: BaseModel, indent: int = 0) -> list[str]:
    """YAML lines of ``model`` with each field's description as a comment above it."""
    docs = field_docs(type(model))
    lines: list[str] = []
    pad = " " * indent
    hints = typing.get_type_hints(type(model))
    for name in type(model).model_fields:
        if indent > 0 and name == "preprocess" and isinstance(model, _STAGES):
            continue  # set once, at the top level (a stage may still set its own keys)
        value = getattr(model, name)
        desc = docs.get(name, "")
        if desc:
            lines.extend(f"{pad}# {chunk}" for chunk in _wrap(desc, 96 - indent))
        sub = _model_type(hints.get(name))
        if isinstance(value, BaseModel) and sub is not None:
            lines.append(f"{pad}{name}:")
            lines.extend(commented_yaml(value, indent + 2))
        else:
            dumped = (
                value.model_dump(mode="json") if isinstance(value, BaseModel) else _jsonable(value)
            )
            lines.append(f"{pad}{name}: {_yaml_value(dumped)}")
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(width, 40)) or [""]


def default_config_text(config: PipelineConfig | None = None) -> str:
    """The commented YAML of ``config`` (the defaults when None)."""
    config = config or PipelineConfig()
    head = [
        "# phenolapse run configuration. Every option is listed with its default (the reference's",
        "# settings). Relative paths are taken relative to this file. Run: phenolapse run THIS.yaml",
        "",
    ]
    return "\n".join(head + commented_yaml(config)) + "\n"


def write_default_config(path: str | Path, config: PipelineConfig | None = None) -> Path:
    """Write the commented default configuration to ``path`` (atomically)."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(default_config_text(config))
    return Path(path)

"""The stages of ``phenolapse run``: simulate -> ingest -> train -> embed -> temporal, lens, compare -> report.

Output folder layout::

    OUT/screen/            simulated screen (when screen.simulate is set)
    OUT/manifest.parquet   one row per image
    OUT/train/             ConvAE training run (model.pt, history.csv, loss_curve.png, checkpoints/)
    OUT/embed/             features.zarr, profiles.parquet, profiles_normalized.parquet
    OUT/temporal/          distances, clusters, annotations, GR, potency over time, figures
    OUT/lens/              classification with and without the lens, importance maps
    OUT/compare/           comparison.csv / .md and figures
    OUT/report.html        everything above in one file, figures embedded
    OUT/report/            one page per drug (its curves and image strips), linked from report.html

phenolapse writes only these paths (listed in ``OUT/.phenolapse.written.json`` before it writes them)
and removes only paths listed there; an output folder at ``/``, the home folder, the image folder,
a folder above it or one inside it is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from phenolapse.data.imageio import IMAGE_SUFFIXES
from phenolapse.errors import ConfigError
from phenolapse.pipeline.config import PipelineConfig, lens_autoencoder_error
from phenolapse.pipeline.runner import Stage, StageContext, file_fingerprint, files_fingerprint

log = logging.getLogger("phenolapse.pipeline")


def _cfg(ctx: StageContext) -> PipelineConfig:
    cfg = ctx.config
    assert isinstance(cfg, PipelineConfig)
    return cfg


def _rel(ctx: StageContext, path: Path) -> str:
    return str(Path(path).resolve().relative_to(ctx.out_dir.resolve()))


def _stage_config(ctx: StageContext, section: str) -> Any:
    """A stage's own configuration with the run's ``preprocess`` under its own keys."""
    return _cfg(ctx).stage_config(section)


def _config_fp(config: Any) -> Any:
    """The JSON of a stage configuration, without options that do not change results."""
    return config.model_dump(mode="json", exclude={"progress"})


def _images_dir(ctx: StageContext) -> Path:
    cfg = _cfg(ctx)
    if cfg.screen.simulate is not None:
        return ctx.path("simulate", "images")
    assert cfg.screen.images_dir is not None
    return Path(cfg.screen.images_dir)


def _platemap(ctx: StageContext) -> Path | None:
    cfg = _cfg(ctx)
    if cfg.screen.simulate is not None:
        return ctx.path("simulate", "platemap")
    return cfg.screen.platemap


def _manifest(ctx: StageContext) -> Any:
    from phenolapse.data.manifest import read_manifest

    return read_manifest(ctx.path("ingest", "manifest"))


def _weights(ctx: StageContext) -> Path:
    cfg = _cfg(ctx)
    if cfg.weights is not None:
        return Path(cfg.weights)
    if "train" in ctx.outputs:
        return ctx.path("train", "model")
    raise ConfigError("no ConvAE weights: enable stages.train or set weights")


# ------------------------------------------------------------------------------------------ simulate


def _simulate_fp(ctx: StageContext) -> Any:
    spec = _cfg(ctx).screen.simulate
    if spec is None:
        return None
    data = spec.model_dump(mode="json")
    data["overrides"].pop("progress", None)
    return data


def _simulate_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.data.simulator import simulate_screen

    spec = _cfg(ctx).screen.simulate
    assert spec is not None
    screen = simulate_screen(
        ctx.out_dir / "screen", preset=spec.preset, seed=spec.seed, **spec.overrides
    )
    return {
        "root": _rel(ctx, screen.root),
        "images": _rel(ctx, screen.images_dir),
        "platemap": _rel(ctx, screen.platemap_path),
        "truth": _rel(ctx, screen.truth_path),
        "images_csv": _rel(ctx, screen.images_csv_path),
    }


# -------------------------------------------------------------------------------------------- ingest


def _ingest_fp(ctx: StageContext) -> Any:
    cfg = _cfg(ctx)
    pm = _platemap(ctx)
    return {
        "screen": cfg.screen.model_dump(
            mode="json", exclude={"simulate", "growth_exports", "growth_platemap"}
        ),
        "files": files_fingerprint(_images_dir(ctx), frozenset(IMAGE_SUFFIXES)),
        "platemap": file_fingerprint(pm) if pm else None,
    }


def _ingest_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.data.manifest import build_manifest, skipped_table, write_manifest
    from phenolapse.io_utils import write_csv

    cfg = _cfg(ctx)
    tz = cfg.screen.time_zero
    df = build_manifest(
        _images_dir(ctx),
        platemap=_platemap(ctx),
        time_zero=tz,
        pattern=cfg.screen.pattern,
        on_error="skip" if cfg.screen.skip_bad else "raise",
        progress=cfg.embed.progress,  # the run's setting: quiet_config turns every bar off
    )
    out = {"manifest": "manifest.parquet"}
    skipped = skipped_table(df)
    write_manifest(df, ctx.out_dir / "manifest.parquet")
    if skipped is not None and len(skipped):
        write_csv(skipped, ctx.out_dir / "manifest.skipped.csv")
        out["skipped"] = "manifest.skipped.csv"
    return out


# --------------------------------------------------------------------------------------------- train


def _train_fp(ctx: StageContext) -> Any:
    return _config_fp(_stage_config(ctx, "train"))


def _train_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.training.loop import list_checkpoints, train

    run_dir = ctx.out_dir / "train"
    # Resume only an interrupted attempt with the same settings; anything else is replaced.
    resume = ctx.interrupted and run_dir.exists() and bool(list_checkpoints(run_dir))
    if run_dir.exists() and not resume:
        ctx.remove("train")
    result = train(
        _manifest(ctx),
        out=run_dir,
        config=_stage_config(ctx, "train"),
        resume=resume,
    )
    return {
        "model": _rel(ctx, result.model_path),
        "history": _rel(ctx, run_dir / "history.csv"),
        "loss_curve": _rel(ctx, run_dir / "loss_curve.png"),
    }


# --------------------------------------------------------------------------------------------- embed


def _weights_fp(ctx: StageContext) -> str | None:
    cfg = _cfg(ctx)
    return file_fingerprint(Path(cfg.weights)) if cfg.weights is not None else None


def _embed_fp(ctx: StageContext) -> Any:
    return {"embed": _config_fp(_stage_config(ctx, "embed")), "weights": _weights_fp(ctx)}


def _embed_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.embedding import embed_manifest
    from phenolapse.embedding.extract import StoreMismatchError

    out = ctx.out_dir / "embed"
    manifest = _manifest(ctx)
    config = _stage_config(ctx, "embed").model_copy(update={"profiles": True})
    try:
        embed_manifest(
            manifest, weights=_weights(ctx), out=out, config=config, overwrite=ctx.forced
        )
    except StoreMismatchError as exc:
        # The store is this run's own, made for other inputs: this stage's results replace it.
        log.warning("%s; computing the features again", str(exc).split("; write to")[0])
        embed_manifest(manifest, weights=_weights(ctx), out=out, config=config, overwrite=True)
    files = {"features": "embed/features.zarr", "profiles": "embed/profiles.parquet"}
    if (out / "profiles_normalized.parquet").is_file():
        files["profiles_normalized"] = "embed/profiles_normalized.parquet"
    return files


# ------------------------------------------------------------------------------------------ temporal


def _growth_platemap(ctx: StageContext) -> Path | None:
    cfg = _cfg(ctx)
    return cfg.screen.growth_platemap or _platemap(ctx)


def _temporal_fp(ctx: StageContext) -> Any:
    cfg = _cfg(ctx)
    exports = cfg.screen.growth_exports
    growth = None
    if exports:
        pm = _growth_platemap(ctx)
        growth = {
            "exports": [file_fingerprint(Path(p)) for p in exports],
            "platemap": file_fingerprint(pm) if pm else None,
            "time_zero": cfg.screen.growth_time_zero(),
        }
    return {"temporal": _config_fp(cfg.temporal), "growth": growth, "potency": 1}


def _temporal_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.data.incucyte import read_confluence_exports
    from phenolapse.embedding import read_profiles
    from phenolapse.pipeline.potency import write_potency
    from phenolapse.report.temporal_figures import write_temporal_figures
    from phenolapse.temporal.growth import check_growth_plates
    from phenolapse.temporal.pipeline import run_temporal

    cfg = _cfg(ctx)
    out = ctx.out_dir / "temporal"
    normalized = ctx.out_dir / "embed" / "profiles_normalized.parquet"
    source = normalized if normalized.is_file() else ctx.path("embed", "profiles")
    profiles = read_profiles(source)
    growth = None
    if cfg.screen.growth_exports and cfg.temporal.use_growth:
        growth = read_confluence_exports(
            cfg.screen.growth_exports,
            platemap=_growth_platemap(ctx),
            time_zero=cfg.screen.growth_time_zero(),
        )
        check_growth_plates(growth, profiles)
    manifest = _manifest(ctx)
    result = run_temporal(
        profiles, out_dir=out, config=cfg.temporal, manifest=manifest, growth=growth
    )
    result.files.update(write_temporal_figures(result, out / "figures", manifest=manifest))
    files = {k: _rel(ctx, Path(v)) for k, v in result.files.items() if Path(v).exists()}
    if result.growth is not None:
        files.update({k: _rel(ctx, p) for k, p in write_potency(result.growth, out).items()})
    return files


# ---------------------------------------------------------------------------------------------- lens


def _lens_fp(ctx: StageContext) -> Any:
    ae = _cfg(ctx).lens_autoencoder
    fp: dict[str, Any] = {"lens": _config_fp(_stage_config(ctx, "lens"))}
    fp["weights"] = _weights_fp(ctx)
    if ae is not None:  # only when set: the runs without it keep their keys
        fp["lens_autoencoder"] = file_fingerprint(Path(ae))
    return fp


def _lens_models(ctx: StageContext) -> tuple[Path, Path | None]:
    """The lens's ConvAE (``weights``) and other frozen F (``encoder``, None for the ConvAE's).

    A ResNet as the run's model is F; the lens then starts from ``lens_autoencoder``.
    """
    from phenolapse.models.convae import read_checkpoint
    from phenolapse.models.resnet import is_resnet_checkpoint

    model, ae = _weights(ctx), _cfg(ctx).lens_autoencoder
    if not is_resnet_checkpoint(read_checkpoint(model, map_location="cpu")):
        if ae is not None:
            log.warning("lens_autoencoder is not used: the lens starts from the model %s", model)
        return model, None
    if ae is None:
        raise ConfigError(lens_autoencoder_error(f"a ResNet ({model})"))
    return Path(ae), model


def _lens_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.lens.run import run_lens
    from phenolapse.report.lens_figures import write_lens_figures

    out = ctx.out_dir / "lens"
    weights, encoder = _lens_models(ctx)
    result = run_lens(
        _manifest(ctx),
        weights=weights,
        out=out,
        config=_stage_config(ctx, "lens"),
        encoder=encoder,
    )
    write_lens_figures(result)
    return {"dir": "lens", "results": "lens/lens_results.csv"}


# ------------------------------------------------------------------------------------------- compare


def _compare_fp(ctx: StageContext) -> Any:
    cfg = _cfg(ctx)
    wdir = cfg.compare.weights_dir
    return {
        "compare": _config_fp(_stage_config(ctx, "compare")),
        "pretrained": files_fingerprint(Path(wdir)) if wdir is not None else None,
        "weights": _weights_fp(ctx),
    }


def _compare_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.comparison.extractors import offline_extractor_specs
    from phenolapse.comparison.run import run_comparison
    from phenolapse.report.comparison_figures import write_comparison_figures

    cfg = _cfg(ctx)
    specs = offline_extractor_specs(
        convae_weights=_weights(ctx), weights_dir=cfg.compare.weights_dir
    )
    from phenolapse.embedding.extract import StoreMismatchError

    out = ctx.out_dir / "compare"
    if out.exists() and not ctx.interrupted:
        ctx.remove("compare")  # derived features of other settings; an interrupted run keeps them
    manifest = _manifest(ctx)
    config = _stage_config(ctx, "compare")
    try:
        result = run_comparison(out=out, extractors=specs, manifest=manifest, config=config)
    except StoreMismatchError as exc:
        log.warning("%s; computing the features again", str(exc).split("; write to")[0])
        ctx.remove("compare")
        result = run_comparison(out=out, extractors=specs, manifest=manifest, config=config)
    if config.figures:
        write_comparison_figures(result.table, result.details, out)
    return {"dir": "compare", "table": "compare/comparison.csv"}


# -------------------------------------------------------------------------------------------- report


def _report_fp(ctx: StageContext) -> Any:
    return {"title": _cfg(ctx).title, "version": 1}


def _report_run(ctx: StageContext) -> dict[str, str]:
    from phenolapse.report.pipeline_report import build_pipeline_report

    path = build_pipeline_report(ctx.out_dir, _cfg(ctx), ctx.outputs)
    return {"report": _rel(ctx, path)}


def pipeline_stages() -> list[Stage]:
    """The stages of a full run, in order."""

    def has_sim(c: Any) -> bool:
        return c.screen.simulate is not None

    return [
        Stage("simulate", (), _simulate_fp, _simulate_run, has_sim, writes=("screen",)),
        Stage(
            "ingest",
            ("simulate",),
            _ingest_fp,
            _ingest_run,
            writes=("manifest.parquet", "manifest.skipped.csv"),
        ),
        Stage(
            "train",
            ("ingest",),
            _train_fp,
            _train_run,
            lambda c: c.stages.train and c.weights is None,
            writes=("train",),
        ),
        Stage("embed", ("ingest", "train"), _embed_fp, _embed_run, writes=("embed",)),
        Stage(
            "temporal",
            ("embed", "ingest"),
            _temporal_fp,
            _temporal_run,
            lambda c: c.stages.temporal,
            writes=("temporal",),
        ),
        Stage(
            "lens",
            ("ingest", "train"),
            _lens_fp,
            _lens_run,
            lambda c: c.stages.lens,
            writes=("lens",),
        ),
        Stage(
            "compare",
            ("embed", "ingest", "train"),
            _compare_fp,
            _compare_run,
            lambda c: c.stages.compare,
            writes=("compare",),
        ),
        Stage(
            "report",
            ("ingest", "train", "embed", "temporal", "lens", "compare"),
            _report_fp,
            _report_run,
            lambda c: c.stages.report,
            writes=("report.html", "report"),
        ),
    ]


STAGE_NAMES = [s.name for s in pipeline_stages()]


def check_output_dir(config: PipelineConfig) -> Path:
    """The resolved output folder; ConfigError for ``/``, home, or a folder that meets the images.

    Every stage writes images (figures as PNG); inside the image folder, or above it, the next run
    would read them as screen images. Above the images, or at ``/`` or home, the folder holds far
    more than this run's results.
    """
    out = Path(config.output_dir).expanduser().resolve()
    what = f"output_dir {out}"
    if out == Path(out.anchor):
        raise ConfigError(f"{what} is the root of the file system; choose a folder of its own")
    if out == Path.home().resolve():
        raise ConfigError(f"{what} is your home folder; choose a folder of its own")
    if config.screen.images_dir is not None:
        images = Path(config.screen.images_dir).expanduser().resolve()
        where = (
            "is the image folder"
            if out == images
            else "holds the image folder"
            if out in images.parents
            else "is inside the image folder"
            if images in out.parents
            else None
        )
        if where is not None:
            raise ConfigError(
                f"{what} {where} (screen.images_dir {images}); a run writes figures that the next "
                "run would read as images: set output_dir to a folder outside the images"
            )
    return out


def optional_needs(config: PipelineConfig) -> dict[str, list[str]]:
    """The optional modules each enabled option of ``config`` needs (see :mod:`phenolapse.extras`)."""
    needs: dict[str, list[str]] = {}
    if config.stages.lens and config.lens.integrated_gradients and config.lens.importance_examples:
        needs["lens.integrated_gradients"] = ["captum"]
    if config.stages.compare:
        needs["stages.compare"] = ["copairs"]
        if config.compare.embedding == "umap":
            needs["compare.embedding: umap"] = ["umap"]
    return needs


def quiet_config(config: PipelineConfig) -> PipelineConfig:
    """``config`` with every stage's progress bars off (results do not change)."""
    update: dict[str, Any] = {
        name: getattr(config, name).model_copy(update={"progress": False})
        for name in ("train", "embed", "temporal", "lens", "compare")
    }
    spec = config.screen.simulate
    if spec is not None and "progress" not in spec.overrides:
        sim = spec.model_copy(update={"overrides": {**spec.overrides, "progress": False}})
        update["screen"] = config.screen.model_copy(update={"simulate": sim})
    return config.model_copy(update=update)


def run_pipeline(
    config: PipelineConfig,
    *,
    start: str | None = None,
    until: str | None = None,
    echo: Any = print,
    progress: bool | None = None,
) -> list[Any]:
    """Run the whole analysis described by ``config`` (see module docstring for the layout).

    ``progress`` draws progress bars; by default only when stderr is a terminal (in a log file a
    line per stage step is printed instead).
    """
    from phenolapse.extras import require
    from phenolapse.io_utils import show_progress
    from phenolapse.pipeline.runner import run_stages

    out = check_output_dir(config)
    if config.weights is None and not config.stages.train:
        raise ConfigError(
            "stages.train is off and no weights are given: the ConvAE needs one of them"
        )
    require(
        optional_needs(config),
        remedy="or turn those options off in the configuration (e.g. stages.compare: false)",
    )
    if not show_progress(progress):
        config = quiet_config(config)
    return run_stages(
        pipeline_stages(), out_dir=out, config=config, start=start, until=until, echo=echo
    )

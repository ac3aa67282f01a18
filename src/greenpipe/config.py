"""Typed, validated configuration models for params.yaml (one model per stage).

Config is loaded once, at the edge, and a wrong key, type or value fails with one line that
names the key and what is allowed (`ConfigError`), before any work starts.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A bad params.yaml: the message is one line naming the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML `true` would otherwise be coerced silently to 1 for an int or float field.
        ann = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and ann in (int, float):
            raise ValueError(f"expected a {ann.__name__}, got a boolean")
        return value


class TrackingConfig(_Section):
    """Where runs are recorded and how energy is measured."""

    mlflow_uri: str = Field("sqlite:///mlflow.db", min_length=1)
    artifact_dir: str = Field("mlartifacts", min_length=1)
    country_iso_code: str = Field("FRA", pattern=r"^[A-Z]{3}$")
    measure_power_secs: float = Field(1.0, gt=0, le=60)
    # CodeCarbon tracking_mode: "machine" counts the whole machine's load (a 10% idle floor
    # included); "process" only the CPU time and memory of the stage's process tree, which is
    # what concurrent runs (parallel sweeps) need so that no run is charged for another's work
    codecarbon_mode: Literal["machine", "process"] = "machine"
    # idle baseline (greenpipe.tracking.idle): a quiet window of idle_seconds, reused per host
    # and mode for idle_max_age_s; active energy = gross - idle power x duration
    idle_seconds: float = Field(5.0, ge=1, le=300)
    idle_max_age_s: float = Field(3600.0, ge=0, le=7 * 86400)

    @field_validator("country_iso_code")
    @classmethod
    def _known_to_codecarbon(cls, code: str) -> str:
        # CodeCarbon silently uses the world average (~475 gCO2e/kWh) for a code it does not
        # know: check against its own table so a typo is an error, not another grid
        known = codecarbon_countries()
        if known and code not in known:
            raise ValueError(
                f"'{code}' is not a country in CodeCarbon's energy-mix data; use an ISO 3166-1 "
                "alpha-3 code it knows, such as FRA, DEU, USA or GBR"
            )
        return code


@functools.lru_cache(maxsize=1)
def codecarbon_countries() -> frozenset[str]:
    """ISO codes in CodeCarbon's global_energy_mix.json (read without importing codecarbon);
    empty if CodeCarbon is not installed."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "data" / "private_infra" / "global_energy_mix.json"
    return frozenset(json.loads(path.read_text()))


class DataConfig(_Section):
    """prepare: the source and the stratified split.

    image_folder: one subfolder per class under `path`, PNG or JPEG of any size and mode.
    csv: a CSV file at `path` with columns `path` and `label` (greenpipe.data.image_csv).
    Either way every image is converted to `channels` channels (1 grayscale, 3 RGB) and
    brought to `image_size` x `image_size` pixels by `fit`: stretch (aspect ratio not kept),
    pad (kept, centred on black) or crop (kept, centre cut out); see greenpipe.data.images.
    """

    source: Literal["digits", "npz", "image_folder", "csv"] = "digits"
    path: str | None = None
    image_size: int = Field(32, ge=4, le=1024)
    channels: Literal[1, 3] = 1
    fit: Literal["stretch", "pad", "crop"] = "stretch"
    # digits, npz: images enlarged `upscale` times per side (bilinear), e.g. 4 gives the 8x8
    # digits at 32x32, a CIFAR-size input for the ResNet and MobileNetV2 architectures
    upscale: int = Field(1, ge=1, le=16)
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _path_for_source(self) -> DataConfig:
        if self.upscale > 1 and self.source in ("image_folder", "csv"):
            raise ValueError(
                f"data.upscale applies to digits and npz; for {self.source} set data.image_size"
            )
        if self.source != "digits" and not self.path:
            raise ValueError(f"data.path is required when data.source is {self.source!r}")
        escapes = self.path and os.path.normpath(self.path).split(os.sep)[0] == os.pardir
        if escapes and not os.path.isabs(self.path):
            raise ValueError(
                f"data.path {self.path!r} leaves the repo by a relative path; "
                "give data outside the repo as an explicit absolute path"
            )
        return self


class CleanConfig(_Section):
    """clean: which checks drop samples.

    Near duplicates: perceptual hashes (64-bit DCT pHash) at most `near_duplicate_distance`
    bits apart. Label issues: cleanlab confident learning on `label_folds`-fold out-of-fold
    probabilities of a logistic regression, on the train split; `flag` only counts them,
    `drop` removes them. `grid_max` flagged samples are drawn in the PNG grid.
    """

    drop_invalid: bool = True
    drop_duplicates: bool = True
    drop_near_duplicates: bool = True
    near_duplicate_distance: int = Field(4, ge=0, le=32)
    drop_leakage: bool = True
    label_issues: Literal["off", "flag", "drop"] = "flag"
    label_folds: int = Field(5, ge=2, le=20)
    grid_max: int = Field(48, ge=1, le=400)


TransformName = Literal["flip", "rotate", "shift", "zoom", "noise", "brightness", "blur"]


class TransformSpec(_Section):
    """One augmentation: `name`, probability `p` and a `limit` whose unit depends on the name:
    rotate degrees; shift and zoom a fraction of the image size; noise a std in [0, 1] units;
    brightness a fraction; blur a max kernel size in px; flip ignores it (horizontal flip)."""

    name: TransformName
    p: float = Field(1.0, ge=0, le=1)
    limit: float = Field(0.0, ge=0, le=180)


class AugmentConfig(_Section):
    """augment: seeded transforms of the train split; `factor` = output size / input size;
    `transforms` are applied in order (albumentations); `grid_samples` originals are drawn
    with their augmented copies in the PNG grid."""

    factor: int = Field(2, ge=1, le=64)
    transforms: tuple[TransformSpec, ...] = (
        TransformSpec(name="rotate", limit=10.0),
        TransformSpec(name="shift", limit=0.125),
        TransformSpec(name="noise", limit=0.02),
    )
    grid_samples: int = Field(8, ge=1, le=64)


_LEVELS = {"zlib": (0, 9), "zstd": (1, 22), "blosc2": (0, 9), "none": (0, 22)}


class CompressConfig(_Section):
    """compress: dtype quantization, resolution downscaling (stored `downscale` x smaller per
    side, restored on load), subsampling of the train split to `fraction` (stratified random
    or a per-class k-center greedy coreset), and the container codec at `level`."""

    dtype: Literal["uint8", "float32"] = "uint8"
    codec: Literal["zlib", "zstd", "blosc2", "none"] = "zlib"
    level: int = Field(6, ge=0, le=22)
    downscale: int = Field(1, ge=1, le=8)
    fraction: float = Field(1.0, gt=0, le=1)
    subsample: Literal["stratified", "kcenter"] = "stratified"

    @field_validator("level")
    @classmethod
    def _level_for_codec(cls, level: int, info: ValidationInfo) -> int:
        codec = info.data.get("codec", "zlib")
        lo, hi = _LEVELS.get(codec, (0, 22))
        if not lo <= level <= hi:
            raise ValueError(f"for codec {codec!r} the level must be in {lo}..{hi}")
        return level


class ModelArch(_Section):
    """arch cnn: conv blocks of `channels`, then one hidden dense layer."""

    channels: tuple[int, ...] = Field((32, 64), min_length=1, max_length=4)
    hidden: int = Field(512, ge=4, le=4096)
    dropout: float = Field(0.25, ge=0, lt=1)

    @model_validator(mode="after")
    def _positive_channels(self) -> ModelArch:
        if any(c <= 0 for c in self.channels):
            raise ValueError("channels must all be positive integers")
        return self


class MlpArch(_Section):
    """arch mlp: dense layers of `hidden` units over the flattened image."""

    hidden: tuple[Annotated[int, Field(ge=4, le=16384)], ...] = Field((512, 256), min_length=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class ResNetArch(_Section):
    """arch resnet: CIFAR ResNet of `depth` = 6n + 2 layers, `width` channels in stage 1."""

    depth: int = Field(20, ge=8, le=1202)
    width: int = Field(16, ge=1, le=1024)
    dropout: float = Field(0.0, ge=0, lt=1)

    @field_validator("depth")
    @classmethod
    def _six_n_plus_two(cls, depth: int) -> int:
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 (8, 14, 20, 32, 44, 56, 110), got {depth}")
        return depth


class MobileNetV2Arch(_Section):
    """arch mobilenetv2: inverted residuals, channels x `width` (the width multiplier)."""

    width: float = Field(1.0, ge=0.05, le=4)
    last_channels: int = Field(1280, ge=8, le=8192)
    dropout: float = Field(0.2, ge=0, lt=1)


class CustomArch(_Section):
    """arch custom: `function` in the model section's `file` builds the model. It is called
    as function(input_shape, n_classes, framework=..., **the other keys here)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    function: str = Field("build", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


ZOO = "src/greenpipe/architectures/zoo.py"  # where the built-in architectures are defined
ARCHS = ("cnn", "mlp", "resnet", "mobilenetv2")


class ModelSpec(_Section):
    """A model section: `arch` picks the architecture, `file` is where it is defined (a DVC
    dependency of the stages that use the model), and each architecture has its own settings
    subsection, so `-S train.model.arch=resnet` switches without touching the others."""

    arch: Literal["cnn", "mlp", "resnet", "mobilenetv2", "custom"] = "cnn"
    file: str = ZOO
    cnn: ModelArch = ModelArch()
    mlp: MlpArch = MlpArch()
    resnet: ResNetArch = ResNetArch()
    mobilenetv2: MobileNetV2Arch = MobileNetV2Arch()
    custom: CustomArch = CustomArch()

    @model_validator(mode="after")
    def _file_matches_arch(self) -> ModelSpec:
        if self.arch != "custom" and self.file != ZOO:
            raise ValueError(
                f"file {self.file!r} is used only with arch: custom; set arch: custom, "
                f"or file: {ZOO} for the built-in {self.arch}"
            )
        if self.arch == "custom" and (self.file == ZOO or not self.file.endswith(".py")):
            raise ValueError(
                "arch custom needs file: your Python file in the repo (e.g. custom/models.py)"
            )
        if self.arch == "custom" and (
            Path(self.file).is_absolute() or ".." in Path(self.file).parts
        ):
            raise ValueError(f"file {self.file!r} must be a path inside the repo, relative to it")
        return self

    @property
    def settings(self):
        """The chosen architecture's settings subsection."""
        return getattr(self, self.arch)


class FitConfig(_Section):
    """Optimisation budget shared by train and distill; `precision` of the forward and
    backward passes: fp32, bf16 (torch CPU/CUDA autocast, Keras mixed_bfloat16), fp16 (CUDA
    only, with loss scaling) or auto (fp16 on a CUDA GPU or a TensorFlow GPU, fp32 on the CPU,
    where bf16 pays only with native bf16 units: measure it with benchmarks/precision.py).

    `deterministic`: true trains with deterministic kernels only (the same seed gives the
    same weights, on a GPU too), and fails in one line naming an op that has none (on a GPU,
    e.g. the backward pass of global average pooling); false lets the framework pick its
    fastest kernels (cuDNN autotuning, atomic adds), whose results may differ between runs.
    On the CPU both give the same results."""

    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0, le=1)
    patience: int = Field(5, ge=1, le=1000)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "auto"
    deterministic: bool = True


BackendName = Literal["torch", "tensorflow"]


class TrainConfig(FitConfig):
    """train: the teacher; `backends` lists the frameworks dvc.yaml runs (one foreach item each)."""

    backends: tuple[BackendName, ...] = Field(("torch", "tensorflow"), min_length=1)
    model: ModelSpec = ModelSpec()
    nproc: int = Field(1, ge=1, le=64)  # >1: torch trains data-parallel (DDP) under torchrun

    @model_validator(mode="after")
    def _unique_backends(self) -> TrainConfig:
        if len(set(self.backends)) != len(self.backends):
            raise ValueError(f"train.backends lists a framework twice: {list(self.backends)}")
        return self


class DistillConfig(FitConfig):
    """distill: a registered KD `loss` (greenpipe.distill.LOSSES) with temperature T and weight
    alpha on the soft term."""

    loss: Literal["hinton", "logit_std"] = "logit_std"
    temperature: float = Field(4.0, gt=0, le=100)
    alpha: float = Field(0.7, ge=0, le=1)
    model: ModelSpec = ModelSpec(
        cnn=ModelArch(channels=(16, 32), hidden=128, dropout=0.1),
        mlp=MlpArch(hidden=(128,), dropout=0.1),
        resnet=ResNetArch(depth=8, width=8),
        mobilenetv2=MobileNetV2Arch(width=0.25, last_channels=128, dropout=0.1),
    )
    min_param_ratio: float = Field(5.0, ge=1)


class PruneConfig(_Section):
    """optimize.prune: structured L1-norm pruning (fractions of conv filters and hidden units
    removed per layer), then `fine_tune_epochs` of distillation from the teacher at
    `fine_tune_lr` (0 epochs: no fine-tuning)."""

    channel_fraction: float = Field(0.25, ge=0, lt=1)
    hidden_fraction: float = Field(0.5, ge=0, lt=1)
    fine_tune_epochs: int = Field(20, ge=0, le=1000)
    fine_tune_lr: float = Field(1e-3, gt=0, le=10)


class OptimizeConfig(_Section):
    """optimize: int8 post-training quantization and structured pruning of the KD student."""

    quantization: Literal["static", "dynamic"] = "static"
    calibration_samples: int = Field(512, ge=1, le=100000)
    prune: PruneConfig = PruneConfig()
    # inference runtimes that get an fp32 and a static int8 copy of the KD student;
    # onnxruntime: both frameworks; aoti (AOTInductor): torch, fp32 only
    runtimes: tuple[Literal["onnxruntime", "aoti"], ...] = ("onnxruntime", "aoti")

    @model_validator(mode="after")
    def _unique_runtimes(self) -> OptimizeConfig:
        if len(set(self.runtimes)) != len(self.runtimes):
            raise ValueError(f"optimize.runtimes lists a runtime twice: {list(self.runtimes)}")
        return self


class EvaluateConfig(_Section):
    """evaluate: how latency, throughput, memory, inference energy and intervals are measured.

    Latency at batch 1 and at `latency_batch_size`; `energy_repeats` CodeCarbon tasks of at
    least `energy_inferences` inferences and `energy_min_seconds` each; a seeded bootstrap of
    `bootstrap_samples` resamples for a `confidence` interval; peak memory in a fresh process
    per model when `peak_memory` is true.
    """

    warmup: int = Field(20, ge=0)
    latency_runs: int = Field(200, ge=10)
    latency_batch_size: int = Field(32, ge=2)
    throughput_batch_size: int = Field(256, ge=1)
    energy_inferences: int = Field(20000, ge=1000)
    energy_repeats: int = Field(3, ge=1, le=100)
    energy_min_seconds: float = Field(1.0, gt=0, le=600)
    bootstrap_samples: int = Field(1000, ge=100, le=100000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    peak_memory: bool = True


class ReportConfig(_Section):
    """report: title, and how many inferences the "total energy" column assumes."""

    title: str = Field("greenpipe experiment report", min_length=1)
    total_inferences: int = Field(1_000_000, ge=0)


class OrchestrationConfig(_Section):
    """Prefect: retries of a stage that failed at run time (exit 1; config errors never retry)."""

    retries: int = Field(0, ge=0, le=10)
    retry_delay_s: float = Field(10.0, ge=0, le=3600)
    retry_backoff: float = Field(2.0, ge=1, le=10)
    cron: str | None = Field("0 2 * * *", pattern=r"^\S+( \S+){4}$")
    deployment: str = Field("greenpipe", pattern=r"^[\w.-]{1,60}$")

    def retry_delays(self) -> list[float]:
        """Seconds before each retry: retry_delay_s, then multiplied by retry_backoff each time."""
        return [self.retry_delay_s * self.retry_backoff**i for i in range(self.retries)]


class Params(_Section):
    """The whole of params.yaml."""

    seed: int = Field(42, ge=0, le=2**32 - 1)
    experiment: str = Field("greenpipe", min_length=1, pattern=r"^[\w.\- ]+$")
    tracking: TrackingConfig = TrackingConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    data: DataConfig = DataConfig()
    clean: CleanConfig = CleanConfig()
    augment: AugmentConfig = AugmentConfig()
    compress: CompressConfig = CompressConfig()
    train: TrainConfig = TrainConfig()
    distill: DistillConfig = DistillConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    report: ReportConfig = ReportConfig()


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}'; remove it or fix its spelling (see README: params.yaml)"
    got = err.get("input")
    got_s = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    msg = msg[:1].lower() + msg[1:]
    return f"bad value for '{key}'{got_s}: {msg}; fix it in params.yaml or with -S"


def validate_params(raw: Any) -> Params:
    """Build `Params` from a parsed mapping; the first problem raises a one-line ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("params.yaml must be a mapping of sections; see README: params.yaml")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errs = exc.errors()
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise ConfigError(_describe(errs[0]) + more) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (safe YAML only)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"params file '{p}' not found; run from the repo root or pass --params")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"'{p}' is not valid YAML{where}; fix its syntax") from None
    return validate_params(raw or {})

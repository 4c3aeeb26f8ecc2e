"""The scoreboard: every reference figure of science.md §6 (and the few figures of its text that the project
can measure) beside the project's own measured result, its configuration, the exact command that
reproduces it, the machine it ran on and the copy of CIFAR-10 it used.

Reported figures (`REFERENCES`) carry science.md's confidence tag: **[abs]** stated in a paper's abstract or
the talk, **[code]** read from the authors' code, **[mem]** recalled from a paper's text and not checked,
shown as "reported (unverified)". science.md §6 gives no tag to "Scat + linear, about 70 % (Kymatio
example)": it is said so ("untagged").

Where measurements come from, and which one a row shows (the *matching rules*):

- **runs** of the run store (`explorer.runs.RunInfo`, kind "run"): complete, on CIFAR-10, trained and tested
  on the whole sets (``subset``, ``limit_train`` and ``limit_test`` None), of the row's model with the row's
  model options (e.g. cnn13 with ``width`` 512 and ``rho`` relu). The best run is the most faithful one (the
  paper's schedule for its full length, where the project has it: cnn13's ``paper``, 310 epochs), then the
  most accurate; how many other runs match is said.
- **classification results** (`explorer.classify.results`, kind "classify"): roto-translation scattering +
  SVM on CIFAR-10's whole test set; the most faithful (the paper's 64×64 pixels at J = 4), then the most
  accurate.
- **small-data protocol summaries** (`explorer.protocols.small_data`, kind "small_data"): the grid row of
  the model and n, on CIFAR-10's full test set, with at least one finished seed; the paper's schedule
  (small-paper) before the quick one (said so), the paper's model (e.g. WRN 12-8) first, then the most
  finished seeds, then the newest summary. The figure is the mean ± standard deviation over the finished
  seeds.
- **threshold sweeps** stored beside SLE runs (analysis ``threshold_sweep``, `explorer.analysis.threshold`,
  kind "threshold"): accuracy with 20 % of W₁'s angular-Fourier coefficients kept (80 % zeroed, globally)
  minus the accuracy before, in points; a sweep on the whole test set first, then the most accurate run.
  Read, never computed here.

Status of a row: "measured", "not yet run" (with the command that would measure it) or "not reproducible
here" (with the reason: a dataset that is not at hand, a model that does not exist yet).

Dataset flag: sessions recorded since the dataset fingerprint exists name their CIFAR-10 copy
(`explorer.data.cifar10.copy_fingerprint`, in the provenance's ``datasets``): "official release",
"JPEG-derived copy" or "unrecognised copy". Older results did not record it: they are judged by the copy
configured now, "presumably …", or "copy not recorded" when none is configured.

Computation only: no UI import. `scoreboard` takes plain inputs (tests build them by hand); `read_scoreboard`
reads them all from the stores.
"""
from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

STATUSES = ("measured", "not yet run", "not reproducible here")
CONFIDENCE_WORDS = {"abs": "abstract or talk", "code": "authors' code", "mem": "recalled, unverified",
                    "untagged": "no confidence tag in science.md"}
COPY_WORDS = {"official": "official release", "jpeg-derived": "JPEG-derived copy",
              "unknown": "unrecognised copy (not the official release)"}
NOT_RECORDED = "copy not recorded"
THRESHOLD_KEEP = 0.2  # "W₁ thresholded at 80 %": 80 % of the coefficients zeroed, 20 % kept
FULL_TEST = 10_000  # CIFAR-10's test images
SMALL_DATA_COMMAND = "explorer protocol small-data"
NO_CIFAR100 = "CIFAR-100 is not at hand (the project trains on CIFAR-10 and a synthetic set only)"
NO_IMAGENET = ("ImageNet is not at hand, and the project has no ImageNet pipeline (J = 4 scattering of "
               "224-pixel images, ResNet-10 or SLE heads)")


@dataclass(frozen=True)
class Reference:
    """One reported figure. ``figure`` is in % (an accuracy) or, with ``unit`` "points", a change of
    accuracy in points. ``kind`` and ``match`` say which measurements can stand beside it (module
    docstring); ``unreproducible`` says why none can here."""
    key: str
    result: str  # what was measured, as science.md says it
    measure: str  # the quantity: "CIFAR-10 test accuracy", …
    short: str  # a short label for charts
    figure: float
    figure_text: str
    source: str  # "talk", "talk, abstract", "code", "Kymatio example", "P1's text"
    confidence: str  # "abs", "code", "mem", "untagged"
    where: str  # "§6" or the section of science.md's text
    kind: str  # "run", "classify", "small_data", "threshold", "none"
    match: Mapping = field(default_factory=dict)
    unreproducible: str = ""
    unit: str = "%"
    note: str = ""  # what the paper did that a measurement here may not

    @property
    def in_table(self) -> bool:
        """A row of science.md §6's table (else a figure of its text)."""
        return self.where == "§6"

    @property
    def reported(self) -> str:
        """"reported (unverified)" for [mem] figures, else where the figure comes from."""
        if self.confidence == "mem":
            return f"reported (unverified): {self.source}"
        return f"{self.source} [{self.confidence}]" if self.confidence != "untagged" else \
            f"{self.source} ({CONFIDENCE_WORDS['untagged']})"


def _cnn13(width, rho, schedule="paper", epochs=310):
    return {"models": ("cnn13",), "model_config": {"width": width, "rho": rho}, "schedule": schedule,
            "epochs": epochs, "suggest": {"model": "cnn13", "schedule": "paper", "width": width, "rho": rho}}


def _small(model, n, describe):
    return {"model": model, "n": n, "describe": describe}


SLE_PROXY = ("a CIFAR-10 J = 2 SLE, the project's own construction, stands in for the talk's ImageNet J = 4 "
             "SLE (science.md §4)")
HYBRID_SCHEDULE = "schedule hybrid is the project's (30 epochs); the authors' full-data schedule is not encoded here"

REFERENCES: tuple[Reference, ...] = (
    Reference("roto_svm_caltech", "Roto-translation scattering + SVM", "Caltech-101 accuracy",
              "roto SVM Caltech-101", 80.0, "80 %", "talk", "abs", "§6", "none",
              unreproducible="Caltech-101 is not at hand; the project's CIFAR-10 measurement of the same pipeline "
                             "is the row \"Roto-translation scattering + SVM, CIFAR-10\" (§2)"),
    Reference("roto_svm_cifar100", "Roto-translation scattering + SVM", "CIFAR-100 accuracy",
              "roto SVM CIFAR-100", 57.0, "57 %", "talk", "abs", "§6", "none", unreproducible=NO_CIFAR100),
    Reference("cnn13_k512", "P2 CNN, K=512", "CIFAR-10 test accuracy", "CNN13 K=512", 95.4, "95.4 %",
              "talk, abstract", "abs", "§6", "run", _cnn13(512, "relu")),
    Reference("cnn13_k512_cifar100", "P2 CNN, K=512", "CIFAR-100 test accuracy", "CNN13 K=512 CIFAR-100",
              79.6, "79.6 %", "talk, abstract", "abs", "§6", "none", unreproducible=NO_CIFAR100),
    Reference("cnn13_k32", "P2 CNN, K=32", "CIFAR-10 test accuracy", "CNN13 K=32", 88.0, "88.0 %", "authors' code",
              "code", "§6", "run", _cnn13(32, "relu")),
    Reference("cnn13_sign_sqrt", "P2 CNN with ρ = sign(x)(√|x|+0.1)", "CIFAR-10 test accuracy",
              "CNN13 sign·√", 89.0, "about 89 %", "talk", "abs", "§6", "run",
              {**_cnn13(32, "sign_sqrt"), "model_config": {"rho": "sign_sqrt"}},
              note="the talk does not say the width K: any K matches (the command suggests K = 32)"),
    Reference("scat_mlp", "Scat + MLP", "CIFAR-10 test accuracy", "Scat+MLP", 85.0, "85 %", "talk", "abs",
              "§6", "run", {"models": ("scat_mlp",), "model_config": {"J": 2},
                            "suggest": {"model": "scat_mlp"}}, note=HYBRID_SCHEDULE),
    Reference("scat_linear", "Scat + linear", "CIFAR-10 test accuracy", "Scat+linear", 70.0, "about 70 %",
              "Kymatio example", "untagged", "§6", "run",
              {"models": ("scat_linear",), "model_config": {"J": 2},
               "suggest": {"model": "scat_linear", "epochs": 90}},
              note="Kymatio's example trains 90 epochs"),
    *(Reference(f"small_scat_wrn_{n}", "Small-sample Scat+ResNet", f"CIFAR-10 accuracy, {n} training images",
                f"small Scat+WRN n={n}", value, f"{value:g} %", "talk", "abs", "§6", "small_data",
                _small("scat_wrn", n, "scat_wrn J=2 L=8 12-8"),
                note="the paper's protocol: seeds 1–5, schedule small-paper")
      for n, value in ((100, 38.0), (500, 55.0), (1000, 62.0))),
    Reference("imagenet_resnet_top1", "Scat + ResNet-10, ImageNet", "top-1 accuracy", "ImageNet ResNet top-1",
              69.0, "69 %", "talk", "abs", "§6", "none", unreproducible=NO_IMAGENET),
    Reference("imagenet_resnet_top5", "Scat + ResNet-10, ImageNet", "top-5 accuracy", "ImageNet ResNet top-5",
              90.0, "90 %", "talk", "abs", "§6", "none", unreproducible=NO_IMAGENET),
    Reference("imagenet_sle_top1", "Scat + SLE, ImageNet", "top-1 accuracy", "ImageNet SLE top-1", 57.0, "57 %",
              "talk", "abs", "§6", "none", unreproducible=NO_IMAGENET),
    Reference("imagenet_sle_top5", "Scat + SLE, ImageNet", "top-5 accuracy", "ImageNet SLE top-5", 80.0, "80 %",
              "talk", "abs", "§6", "none", unreproducible=NO_IMAGENET),
    Reference("sle_threshold", "SLE W₁ thresholded at 80 % in angular Fourier",
              "change of test accuracy (points)", "SLE thresholded", -2.0, "about −2 points", "talk", "abs",
              "§6", "threshold", {"models": ("sle",), "suggest": {"model": "sle"}}, unit="points",
              note=SLE_PROXY),
    Reference("hierarchical", "Hierarchical CNN", "CIFAR-10 test accuracy", "Hierarchical CNN", 91.0, "91 %",
              "talk", "abs", "§6", "run", {"models": ("hcnn",), "model_config": {"filters": 16},
                                           "suggest": {"model": "hcnn", "schedule": "hcnn-paper"}},
              note="the multiscale hierarchical CNN of P4 (science.md §5), its released configuration (F = 16)"),
    # Figures of science.md's text (not in §6's table) that the project can measure.
    Reference("roto_svm_cifar10", "Roto-translation scattering + SVM, CIFAR-10", "CIFAR-10 test accuracy",
              "roto SVM CIFAR-10", 82.3, "82.3 %", "P1's text", "mem", "§2", "classify",
              {"representation": "roto", "image_size": 64, "J": 4},
              note="the paper: 64×64 pixels, J = 4, 2 wavelets per octave, features selected by orthogonal "
                   "least squares, Gaussian SVM on all 50,000 training images"),
    Reference("scat_wrn", "Scat + WRN 12-8", "CIFAR-10 test accuracy", "Scat+WRN 12-8", 93.1, "≈ 93.1 %",
              "P3's text", "mem", "§4", "run",
              {"models": ("scat_wrn",), "model_config": {"J": 2, "widen": 8}, "suggest": {"model": "scat_wrn"}},
              note=HYBRID_SCHEDULE),
    *(Reference(f"small_wrn_{n}", "Small-sample WRN 16-8", f"CIFAR-10 accuracy, {n} training images",
                f"small WRN n={n}", value, f"{value:g} %", "talk", "abs", "§4", "small_data",
                _small("wrn", n, "wrn 16-8"), note="the paper's protocol: seeds 1–5, schedule small-paper")
      for n, value in ((100, 35.0), (500, 47.0), (1000, 60.0))),
)


@dataclass
class ScoreRow:
    """A reference figure and what the project measured for it (module docstring). ``measured`` is in the
    reference's unit; ``runs`` lists every run behind it (the small-data protocol's seeds)."""
    reference: Reference
    status: str
    measured: float | None = None
    measured_text: str = ""
    spread: float | None = None  # a standard deviation over seeds, in the same unit
    run_id: str = ""  # the run, result, grid or sweep's run shown
    runs: tuple[str, ...] = ()
    configuration: str = ""
    command: str = ""
    machine: str = ""
    dataset: str = ""  # the copy of CIFAR-10 (module docstring); "" when nothing was measured
    note: str = ""
    others: int = 0  # further matching measurements, not shown

    @property
    def difference(self) -> float | None:
        """measured − reported, in points."""
        return None if self.measured is None else self.measured - self.reference.figure

    def as_dict(self) -> dict:
        ref = self.reference
        return {"key": ref.key, "result": ref.result, "measure": ref.measure, "short": ref.short,
                "reported": ref.figure_text,
                "reported_value": ref.figure, "source": ref.reported, "confidence": ref.confidence,
                "where": ref.where, "in_table": ref.in_table, "status": self.status,
                "measured": self.measured_text, "measured_value": self.measured, "spread": self.spread,
                "difference": self.difference, "unit": ref.unit, "run": self.run_id, "runs": list(self.runs),
                "configuration": self.configuration, "command": self.command, "machine": self.machine,
                "dataset": self.dataset, "note": self.note, "others": self.others}


@dataclass
class Scoreboard:
    rows: list[ScoreRow]
    skipped: list[str] = field(default_factory=list)  # damaged inputs left out, and why

    def row(self, key: str) -> ScoreRow:
        for row in self.rows:
            if row.reference.key == key:
                return row
        raise KeyError(key)


# -- small helpers ---------------------------------------------------------------------------------------

def _number(value) -> float | None:
    """A finite real number, else None (a damaged file's "x", NaN, True)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _accuracy(value) -> float | None:
    value = _number(value)
    return value if value is not None and 0.0 <= value <= 1.0 else None


def percent(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} %"


def points(value: float) -> str:
    return f"{value:+.2f} points".replace("-", "−")


def _sessions(provenance) -> list[dict]:
    """A provenance's sessions: the run store's list, or the classification store's flat record."""
    if not isinstance(provenance, Mapping):
        return []
    sessions = provenance.get("sessions")
    if isinstance(sessions, list):
        return [s for s in sessions if isinstance(s, Mapping)]
    return [provenance] if provenance.get("device") or provenance.get("host") else []


def machine_text(provenances: Iterable) -> str:
    """"device on host" of every session, each once, in order ("" when none is recorded)."""
    seen: list[str] = []
    for provenance in provenances:
        for s in _sessions(provenance):
            device, host = s.get("device"), s.get("host")
            if not device and not host:
                continue
            text = f"{device or 'unknown device'} on {host or 'unknown host'}"
            if text not in seen:
                seen.append(text)
    return "; ".join(seen)


def recorded_copies(provenances: Iterable) -> list[str]:
    """The CIFAR-10 copies ("official", "jpeg-derived", "unknown") the sessions recorded, each once."""
    copies: list[str] = []
    for provenance in provenances:
        for s in _sessions(provenance):
            entries = s.get("datasets")
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, Mapping) and entry.get("dataset", "cifar10") == "cifar10":
                    copy = entry.get("copy") if entry.get("copy") in COPY_WORDS else "unknown"
                    if copy not in copies:
                        copies.append(copy)
    return copies


def dataset_flag(provenances: Iterable, current_copy: Mapping | None) -> str:
    """Which CIFAR-10 copy a measurement ran on (module docstring): recorded, else "presumably" the copy
    configured now (``current_copy``, a `copy_fingerprint`), else NOT_RECORDED."""
    copies = recorded_copies(provenances)
    if len(copies) == 1:
        return COPY_WORDS[copies[0]]
    if copies:
        return "mixed copies: " + ", ".join(COPY_WORDS[c] for c in copies)
    if isinstance(current_copy, Mapping) and current_copy.get("copy") in COPY_WORDS:
        return "presumably " + COPY_WORDS[current_copy["copy"]]
    return NOT_RECORDED


def python_command(code: str) -> str:
    return "python -c " + shlex.quote(code)


# -- commands --------------------------------------------------------------------------------------------

def train_command(config: dict) -> str:
    """The `explorer train …` command that rebuilds the run of ``config`` (`explorer.jobs.train_arguments`,
    which checks that the command gives back the same run id), or the Python call when the command line
    cannot express it."""
    from explorer.jobs import JobError, train_arguments

    try:
        return shlex.join(["explorer", "train", *train_arguments(config)])
    except (JobError, ValueError, KeyError, TypeError):
        text = json.dumps(config, sort_keys=True, separators=(",", ":"))
        return python_command(f"import json; from explorer.training import train; "
                              f"train(json.loads({text!r}), resume=True)")


CLASSIFY_OPTIONS = (("J", "--J"), ("image_size", "--image-size"), ("L", "--L"))


def classify_arguments(config: Mapping) -> list[str]:
    """The `explorer classify svm` arguments that compute the result of ``config`` (a stored result's
    config.json), checked by parsing them back with the CLI's own parser. ValueError when the command line
    cannot express it."""
    if config.get("dataset", "cifar10") != "cifar10" or config.get("dtype", "float32") != "float32":
        raise ValueError("only float32 CIFAR-10 features have command-line options")
    roto = config.get("representation") == "roto"
    argv = ["--scattering", str(config["representation"]), "--methods", str(config["method"])]
    argv += [w for key, option in CLASSIFY_OPTIONS for w in (option, str(config[key]))]
    if roto:
        argv += ["--wavelets-per-octave", str(config["Q"]), "--angular-scales", str(config["K"])]
    argv += ["--subset-per-class", str(config["subset_per_class"])]
    if config.get("method") == "nystroem":
        argv += ["--components", str(config["components"])]
    argv += ["--seed", str(config["subset_seed"]), "--C", repr(float(config["C"]))]
    if config.get("test_limit") is not None:
        argv += ["--test-limit", str(config["test_limit"])]
    if _classify_settings(argv) != _settings_of(config):
        raise ValueError("the command line does not give back this configuration")
    return argv


def _settings_of(config: Mapping) -> dict:
    roto = config.get("representation") == "roto"
    settings = {"representation": config["representation"], "method": config["method"], "J": config["J"],
                "image_size": config["image_size"], "L": config["L"],
                "subset_per_class": config["subset_per_class"], "seed": config["subset_seed"],
                "C": float(config["C"]), "test_limit": config.get("test_limit")}
    if roto:
        settings.update(wavelets_per_octave=config["Q"], angular_scales=config["K"])
    if config["method"] == "nystroem":
        settings["components"] = config["components"]
    return settings


def _classify_settings(argv: list[str]) -> dict:
    """What `explorer classify svm ARGV` computes, as `_settings_of` reads a config (the CLI's parser)."""
    import argparse
    import contextlib
    import io

    from explorer.classify_cli import add_parser

    parser = argparse.ArgumentParser(prog="explorer")
    add_parser(parser.add_subparsers(dest="command"))
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(["classify", "svm", *argv])
    except SystemExit:
        raise ValueError(f"invalid classify arguments {argv}") from None
    method = args.methods
    settings = {"representation": args.scattering, "method": method, "J": args.J, "image_size": args.image_size,
                "L": args.L, "subset_per_class": args.subset_per_class, "seed": args.seed, "C": float(args.C),
                "test_limit": args.test_limit}
    if args.scattering == "roto":
        settings.update(wavelets_per_octave=args.wavelets_per_octave, angular_scales=args.angular_scales)
    if method == "nystroem":
        settings["components"] = args.components
    return settings


def classify_command(config: Mapping) -> str:
    try:
        return shlex.join(["explorer", "classify", "svm", *classify_arguments(config)])
    except (ValueError, KeyError, TypeError):
        return ("explorer classify svm (this result's configuration has no command-line form: see "
                "explorer.classify.pipeline.classify)")


def protocol_command(grid: Mapping) -> str:
    """`explorer protocol small-data …` that continues (or recomputes) the grid ``grid`` (a summary's
    "grid"), or the Python call when a model's options are not the defaults (no command-line option)."""
    schedule = {"quick": "quick", "paper": "paper"}.get(grid.get("schedule"))
    if grid.get("model_configs") or schedule is None:
        text = json.dumps(dict(grid), sort_keys=True, separators=(",", ":"))
        return python_command(f"import json; from explorer.protocols import SmallDataGrid, run_grid; "
                              f"run_grid(SmallDataGrid(**json.loads({text!r})))")
    argv = [*SMALL_DATA_COMMAND.split(), "--models", *map(str, grid["models"]), "--sizes", *map(str, grid["sizes"]),
            "--seeds", *map(str, grid["seeds"]), "--schedule", schedule, "--dataset", str(grid["dataset"])]
    if grid.get("limit_test") is not None:
        argv += ["--limit-test", str(grid["limit_test"])]
    return shlex.join(argv)


def sweep_command(run_id: str, sweep: Mapping) -> str:
    """`explorer analyse threshold RUN --sweep [--limit N]` for a stored sweep of the default fractions and
    band, else the Python call (`explorer.analysis.threshold.sweep`)."""
    from explorer.analysis.threshold import DEFAULT_FRACTIONS

    fractions = [round(float(f), 4) for f in sweep.get("fractions", ())]
    limit = sweep.get("limit")
    if fractions == list(DEFAULT_FRACTIONS) and sweep.get("band", 1) == 1:
        argv = ["explorer", "analyse", "threshold", run_id, "--sweep"]
        return shlex.join(argv + (["--limit", str(limit)] if limit is not None else []))
    return python_command(f"from explorer.analysis.threshold import sweep; sweep({run_id!r}, fractions="
                          f"{fractions!r}, limit={limit!r}, band={sweep.get('band', 1)!r})")


def suggested_config(suggest: Mapping) -> dict | None:
    """The full training configuration a "not yet run" row proposes (`explorer.training.make_config`)."""
    from explorer.training import make_config

    options = dict(suggest)
    try:
        return make_config(options.pop("model"), **options)
    except (ValueError, KeyError, TypeError):
        return None


# -- configurations -----------------------------------------------------------------------------------

def run_configuration(config: Mapping) -> str:
    """A run's configuration in one line: the model, the schedule and its length, the seed, the data."""
    from explorer.nets import registry

    model_config = config.get("model_config") or {}
    try:
        described = registry.get(config["model"]).describe(model_config)
    except (ValueError, KeyError, TypeError):
        described = f"{config.get('model')} {json.dumps(model_config, sort_keys=True)}"
    schedule = config.get("schedule") or {}
    augment = config.get("augment") or {}
    words = [described,
             (f"schedule {schedule.get('name') or 'custom'}, {config.get('epochs')} epochs, batch "
              f"{schedule.get('batch_size')}, lr {schedule.get('lr')}"),
             f"seed {config.get('seed')}"]
    if augment:
        crop = augment.get("crop_padding")
        words.append(f"pad-{crop} {augment.get('padding_mode')} crop" + (", flip" if augment.get("flip") else "")
                     if crop else ("flip" if augment.get("flip") else "no augmentation"))
    subset = config.get("subset")
    if subset:
        words.append(f"{subset.get('n')} training images (subset seed {subset.get('seed')})")
    elif config.get("limit_train") is None and config.get("limit_test") is None:
        words.append(f"all of {config.get('dataset')}")
    return "; ".join(words)


def classify_configuration(config: Mapping) -> str:
    roto = config.get("representation") == "roto"
    words = [f"{'roto-translation' if roto else 'translation'} scattering J={config.get('J')}, "
             f"{config.get('image_size')}×{config.get('image_size')} px, L={config.get('L')}"
             + (f", Q={config.get('Q')}, K={config.get('K')}" if roto else "") + f", {config.get('colour', 'yuv')}"]
    if config.get("method") == "nystroem":
        words.append(f"Nyström ({config.get('components')} landmarks) + linear SVM on "
                     f"{config.get('train_size')} training images")
    else:
        words.append(f"Gaussian SVM on {config.get('train_size')} training images "
                     f"({config.get('subset_per_class')} per class, seed {config.get('subset_seed')})")
    words.append(f"C={config.get('C')}; {config.get('test_size')} test images")
    return "; ".join(words)


# -- matching ---------------------------------------------------------------------------------------------

def _whole_cifar10(config: Mapping) -> bool:
    return (config.get("dataset") == "cifar10" and config.get("subset") is None
            and config.get("limit_train") is None and config.get("limit_test") is None)


def config_matches(config, match: Mapping) -> bool:
    """Whether a run of ``config`` measures the reference of ``match``: its model and model options, on the
    whole of CIFAR-10 (module docstring)."""
    if not isinstance(config, Mapping) or config.get("model") not in match.get("models", ()):
        return False
    model_config = config.get("model_config")
    if not isinstance(model_config, Mapping) or not _whole_cifar10(config):
        return False
    return all(model_config.get(k) == v for k, v in (match.get("model_config") or {}).items())


def run_matches(info, match: Mapping) -> bool:
    """Whether the run ``info`` (a RunInfo) is a complete measurement of the reference of ``match``."""
    return (getattr(info, "status", None) == "complete" and _accuracy(getattr(info, "accuracy", None)) is not None
            and config_matches(getattr(info, "config", None), match))


def faithful(config: Mapping, match: Mapping) -> bool:
    """The paper's schedule for its full length (where the reference names one)."""
    schedule = config.get("schedule") or {}
    return bool(match.get("schedule")) and schedule.get("name") == match.get("schedule") \
        and config.get("epochs") == match.get("epochs")


def _partial_note(runs, match: Mapping) -> str:
    """Runs of the reference that have not finished (partial, running): resume them."""
    waiting = [f"{info.id} ({info.status}, {getattr(info, 'epochs_done', 0)}/{getattr(info, 'epochs', None)} epochs)"
               for info in runs if getattr(info, "status", None) in ("partial", "running")
               and config_matches(getattr(info, "config", None), match)]
    return ("Unfinished: " + ", ".join(waiting) + "; continue with its command and --resume.") if waiting else ""


def _run_row(ref: Reference, runs: Sequence, current_copy) -> ScoreRow:
    match = ref.match
    found = [info for info in runs if run_matches(info, match)]
    if not found:
        config = suggested_config(match["suggest"]) if match.get("suggest") else None
        notes = [n for n in (ref.note, _partial_note(runs, match)) if n]
        return ScoreRow(ref, "not yet run", command=train_command(config) if config else "",
                        configuration=run_configuration(config) if config else "", note="; ".join(notes))
    best = max(found, key=lambda i: (faithful(i.config, match), _accuracy(i.accuracy), i.id))
    config = best.config
    notes = []
    if match.get("schedule") and not faithful(config, match):
        notes.append(f"not the paper's schedule ({match['schedule']}, {match['epochs']} epochs)")
    if ref.note:
        notes.append(ref.note)
    if getattr(best, "shipped", False):
        notes.append("shipped with the package")
    value = 100 * _accuracy(best.accuracy)
    return ScoreRow(ref, "measured", value, percent(value), None, best.id, (best.id,), run_configuration(config),
                    train_command(config), machine_text([best.provenance]),
                    dataset_flag([best.provenance], current_copy), "; ".join(notes), len(found) - 1)


def classify_matches(result, match: Mapping) -> bool:
    config, metrics = getattr(result, "config", None), getattr(result, "metrics", None)
    if not isinstance(config, Mapping) or not isinstance(metrics, Mapping):
        return False
    return (config.get("representation") == match["representation"] and config.get("dataset") == "cifar10"
            and config.get("test_limit") is None and _accuracy(metrics.get("test_accuracy")) is not None)


def _classify_row(ref: Reference, results: Sequence, current_copy) -> ScoreRow:
    match = ref.match
    found = [r for r in results if classify_matches(r, match)]
    if not found:
        config = {"representation": match["representation"], "method": "nystroem", "dataset": "cifar10",
                  "dtype": "float32", "J": 3, "image_size": 32, "L": 8, "Q": 1, "K": 2, "subset_per_class": 1000,
                  "subset_seed": 0, "components": 2048, "C": 50.0, "test_limit": None}
        return ScoreRow(ref, "not yet run", command=classify_command(config), note=ref.note)

    def rank(r):
        c = r.config
        return (c.get("image_size") == match["image_size"] and c.get("J") == match["J"],
                _accuracy(r.metrics["test_accuracy"]), r.id)

    best = max(found, key=rank)
    value = 100 * _accuracy(best.metrics["test_accuracy"])
    notes = [ref.note] + (["shipped with the package"] if getattr(best, "shipped", False) else [])
    return ScoreRow(ref, "measured", value, percent(value), None, best.id, (best.id,),
                    classify_configuration(best.config), classify_command(best.config),
                    machine_text([best.provenance]), dataset_flag([best.provenance], current_copy),
                    "; ".join(notes), len(found) - 1)


def _summary_rows(summaries: Sequence, skipped: list[str]) -> list[tuple[dict, dict]]:
    """(summary, row) of every readable row of a CIFAR-10, full-test-set summary with a finished seed."""
    out = []
    for summary in summaries:
        try:
            grid = summary["grid"]
            if grid["dataset"] != "cifar10" or grid.get("limit_test") is not None:
                continue
            for row in summary["rows"]:
                mean, finished = _accuracy(row.get("mean")), row.get("finished")
                if mean is None or isinstance(finished, bool) or not isinstance(finished, int) or finished < 1:
                    continue
                if not isinstance(row.get("n"), int) or not isinstance(row.get("model"), str):
                    raise TypeError("a row without its model or size")
                out.append((summary, row))
        except (KeyError, TypeError, AttributeError) as exc:
            skipped.append(f"protocol summary {_summary_id(summary)}: unreadable ({type(exc).__name__}: {exc})")
    return out


def _summary_id(summary) -> str:
    return str(summary.get("id", "?")) if isinstance(summary, Mapping) else "?"


def _small_data_row(ref: Reference, rows: list[tuple[dict, dict]], runs_by_id: Mapping, current_copy) -> ScoreRow:
    match = ref.match
    found = [(s, r) for s, r in rows if r["model"] == match["model"] and r["n"] == match["n"]]
    if not found:
        grid = {"models": [match["model"]], "sizes": [100, 500, 1000], "seeds": [1, 2, 3, 4, 5],
                "schedule": "paper", "dataset": "cifar10", "model_configs": {}, "limit_test": None}
        return ScoreRow(ref, "not yet run", command=protocol_command(grid),
                        configuration=f"{match['describe']}; seeds 1–5; schedule small-paper", note=ref.note)

    def rank(item):
        summary, row = item
        return (summary.get("schedule") == "small-paper", row.get("describe") == match["describe"],
                row["finished"], _number(summary.get("mtime")) or 0.0, _summary_id(summary))

    summary, row = max(found, key=rank)
    mean, std = 100 * row["mean"], 100 * (_number(row.get("std")) or 0.0)
    seeds = row.get("seeds") or summary["grid"].get("seeds") or []
    accuracies = row.get("accuracies") or []
    run_ids = tuple(rid for rid, a in zip(row.get("run_ids") or [], accuracies) if a is not None)
    infos = [runs_by_id[rid] for rid in run_ids if rid in runs_by_id]
    notes = []
    if summary.get("schedule") != "small-paper":
        notes.append(f"schedule {summary.get('schedule')}: not the paper's (small-paper, 200 epochs of 20 passes)")
    if row["finished"] < len(seeds):
        notes.append(f"{row['finished']} of {len(seeds)} seeds finished: the same command continues the grid")
    if row.get("describe") != match["describe"]:
        notes.append(f"not the paper's model ({match['describe']})")
    devices = sorted({d for d in row.get("devices") or [] if d})
    machine = machine_text([i.provenance for i in infos]) or "; ".join(devices)
    return ScoreRow(ref, "measured", mean, f"{percent(mean)} ± {std:.2f} ({row['finished']}/{len(seeds)} seeds)",
                    std, _summary_id(summary), run_ids,
                    f"{row.get('describe') or row['model']}; {row['n']} training images ({row['n'] // 10} per "
                    f"class), seeds {' '.join(map(str, seeds))}; schedule {summary.get('schedule')}; "
                    f"all 10,000 test images", protocol_command(summary["grid"]), machine,
                    dataset_flag([i.provenance for i in infos], current_copy), "; ".join(notes), len(found) - 1)


def sweep_change(sweep: Mapping, keep: float = THRESHOLD_KEEP) -> tuple[float, float, float] | None:
    """(accuracy before, accuracy after, change in points) with ``keep`` of W₁'s angular-Fourier coefficients
    kept globally, from a stored sweep (`explorer.analysis.threshold.sweep_result`); None when the sweep has
    no such point or is damaged."""
    try:
        fractions = [float(f) for f in sweep["fractions"]]
        index = next(i for i, f in enumerate(fractions) if abs(f - keep) < 1e-6)
        before = _accuracy(sweep["accuracy_before"])
        after = _accuracy(sweep["accuracy"]["fourier"]["global"][index])
    except (KeyError, TypeError, ValueError, IndexError, StopIteration, AttributeError):
        return None
    if before is None or after is None:
        return None
    return before, after, 100 * (after - before)


def _threshold_row(ref: Reference, runs: Sequence, sweeps: Mapping, current_copy) -> ScoreRow:
    match = ref.match
    candidates = [info for info in runs if run_matches(info, match)]
    measured = []
    for info in candidates:
        for sweep in sweeps.get(info.id, ()):
            change = sweep_change(sweep)
            if change is not None:
                measured.append((info, sweep, change))
    if not measured:
        if candidates:
            best = max(candidates, key=lambda i: (_accuracy(i.accuracy), i.id))
            return ScoreRow(ref, "not yet run", run_id=best.id, configuration=run_configuration(best.config),
                            command=sweep_command(best.id, {"fractions": _default_fractions(), "limit": None}),
                            note=f"no threshold sweep stored for {best.id}; {ref.note}")
        config = suggested_config(match["suggest"])
        if config is None:
            return ScoreRow(ref, "not yet run", note=ref.note)
        from explorer.runs import run_id

        command = " && ".join([train_command(config),
                               sweep_command(run_id(config), {"fractions": _default_fractions(), "limit": None})])
        return ScoreRow(ref, "not yet run", configuration=run_configuration(config), command=command, note=ref.note)

    def rank(item):
        info, sweep, _ = item
        return (sweep.get("limit") is None, _accuracy(info.accuracy), info.id)

    info, sweep, (before, after, change) = max(measured, key=rank)
    images = sweep.get("images")
    text = f"{points(change)} ({percent(100 * before)} → {percent(100 * after)}" + \
        (f", {images:,} test images)" if isinstance(images, int) else ")")
    notes = [ref.note] + (["shipped with the package"] if getattr(info, "shipped", False) else [])
    if sweep.get("limit") is not None:
        notes.append(f"on {sweep['limit']} test images, not all {FULL_TEST:,}")
    configuration = (run_configuration(info.config) + "; W₁ thresholded in angular Fourier: 20 % of its "
                     "coefficients kept (80 % zeroed), globally, no retraining")
    command = " && ".join([train_command(info.config), sweep_command(info.id, sweep)])
    return ScoreRow(ref, "measured", change, text, None, info.id, (info.id,), configuration, command,
                    machine_text([info.provenance]), dataset_flag([info.provenance], current_copy),
                    "; ".join(notes), len(measured) - 1)


def _default_fractions() -> list[float]:
    from explorer.analysis.threshold import DEFAULT_FRACTIONS

    return list(DEFAULT_FRACTIONS)


def _unreproducible(ref: Reference, reason: str) -> ScoreRow:
    return ScoreRow(ref, "not reproducible here", note=reason)


# -- the scoreboard ---------------------------------------------------------------------------------------

def scoreboard(runs: Sequence = (), classify_results: Sequence = (), summaries: Sequence = (),
               sweeps: Mapping[str, Sequence[Mapping]] | None = None, current_copy: Mapping | None = None,
               models: Iterable[str] | None = None,
               references: Sequence[Reference] = REFERENCES) -> Scoreboard:
    """One `ScoreRow` per reference, from plain inputs:

    - ``runs``: RunInfo-like objects (id, status, config, accuracy, provenance, shipped, epochs_done, epochs);
    - ``classify_results``: ClassifyResult-like objects (id, config, metrics, provenance, shipped);
    - ``summaries``: small-data summaries as `explorer.protocols.list_summaries` returns them;
    - ``sweeps``: run id → stored threshold sweeps (`explorer.analysis.threshold.sweep_result` dicts);
    - ``current_copy``: the configured CIFAR-10's `copy_fingerprint` (None: none configured);
    - ``models``: the registered model names (default: the registry's).

    A damaged input is left out and said in ``skipped``; the rest is shown."""
    if models is None:
        from explorer.nets import registry

        models = registry.names()
    models = set(models)
    skipped: list[str] = []
    runs = [info for info in runs if _usable_run(info, skipped)]
    runs_by_id = {info.id: info for info in runs}
    small = _summary_rows(summaries, skipped)
    rows = []
    for ref in references:
        try:
            rows.append(_row(ref, runs, runs_by_id, classify_results, small, sweeps or {}, current_copy, models))
        except Exception as exc:  # noqa: BLE001  (one bad input must not take the board down)
            skipped.append(f"{ref.key}: {type(exc).__name__}: {exc}")
            rows.append(ScoreRow(ref, "not yet run", note=f"could not be read: {exc}"))
    return Scoreboard(rows, skipped)


def _usable_run(info, skipped: list[str]) -> bool:
    if getattr(info, "status", None) == "corrupt":
        skipped.append(f"run {getattr(info, 'id', '?')}: damaged ({getattr(info, 'error', '') or 'unreadable'})")
        return False
    if not isinstance(getattr(info, "id", None), str) or not isinstance(getattr(info, "provenance", {}) or {},
                                                                         Mapping):
        skipped.append(f"run {getattr(info, 'id', '?')}: no id or provenance")
        return False
    return True


def _row(ref, runs, runs_by_id, classify_results, small, sweeps, current_copy, models) -> ScoreRow:
    if ref.unreproducible:
        return _unreproducible(ref, ref.unreproducible)
    if ref.kind == "run":
        if not set(ref.match.get("models", ())) & models:
            names = ", ".join(ref.match.get("models", ()))
            return _unreproducible(ref, f"{ref.note or ref.result}: no such model in explorer.nets yet "
                                        f"(its runs will show here once a model named {names} is registered)")
        return _run_row(ref, runs, current_copy)
    if ref.kind == "classify":
        return _classify_row(ref, classify_results, current_copy)
    if ref.kind == "small_data":
        return _small_data_row(ref, small, runs_by_id, current_copy)
    if ref.kind == "threshold":
        return _threshold_row(ref, runs, sweeps, current_copy)
    raise ValueError(f"reference {ref.key} has an unknown kind {ref.kind!r}")


# -- reading the stores -------------------------------------------------------------------------------------

def stored_sweeps(runs: Sequence, models: Iterable[str] = ("sle",)) -> tuple[dict[str, list[dict]], list[str]]:
    """The threshold sweeps stored beside the complete CIFAR-10 runs of ``models`` and computed from their
    present weights: run id → `sweep_result` dicts, read from their files (never computed), and what could
    not be read."""
    from explorer.analysis.threshold import SWEEP_NAME, sweep_result
    from explorer.runs import analyses

    models = set(models)
    found: dict[str, list[dict]] = {}
    skipped: list[str] = []
    for info in runs:
        config = info.config if isinstance(info.config, Mapping) else {}
        if info.status != "complete" or config.get("model") not in models:
            continue
        seen = set()
        for entry in info.analyses:
            if entry.name != SWEEP_NAME or entry.path in seen:
                continue
            seen.add(entry.path)
            if entry.error or entry.current is False:
                why = entry.error or "computed from other weights"
                skipped.append(f"threshold sweep of {info.id} ({entry.path.name}): {why}")
                continue
            try:
                found.setdefault(info.id, []).append(sweep_result(info.id, analyses.read(entry.path)))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                skipped.append(f"threshold sweep of {info.id} ({entry.path.name}): {exc}")
    return found, skipped


def configured_copy() -> dict | None:
    """The `copy_fingerprint` of the CIFAR-10 configured now (EXPLORER_DATA), None when none is (or it
    cannot be read). Reads the files once per copy (cached in the store)."""
    from explorer.data.cifar10 import DatasetNotFoundError, copy_fingerprint

    try:
        return copy_fingerprint()
    except (DatasetNotFoundError, OSError, ValueError):
        return None


def read_scoreboard(store=None) -> Scoreboard:
    """`scoreboard` of everything stored: the runs of ``store`` (default `RunStore()`, shipped runs
    included), the classification results (the user's and the shipped ones), the small-data summaries,
    the stored threshold sweeps, and the configured CIFAR-10's copy. Reads files only: nothing is
    computed or trained (the copy's checksum is read once per copy, 0.4 s, then cached)."""
    import warnings

    from explorer.protocols.small_data import list_summaries
    from explorer.runs import RunStore

    store = store if store is not None else RunStore()
    skipped: list[str] = []
    runs = store.list()
    try:
        from explorer.classify import results as classify_results

        classified = classify_results.list_results()
        skipped += [f"classification result {d.id}: {d.reason}" for d in classify_results.damaged_results()]
    except ImportError:
        classified = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summaries = list_summaries(store)
    skipped += [str(w.message) for w in caught]
    sweeps, unread = stored_sweeps(runs)
    board = scoreboard(runs, classified, summaries, sweeps, configured_copy())
    board.skipped = skipped + unread + board.skipped
    return board

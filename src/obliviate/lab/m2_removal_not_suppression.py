"""``m2``: removal is not suppression (classifier half).

Cooper et al.'s second mismatch: removing observed data does not stop a model from producing
or recognising what that data showed, because models generalise. Here a model is retrained
exactly (obliviate's ``retrain``: from scratch, without every example of class ``c``). Its own
predictions almost never say ``c``; but give a nearest-centroid probe ``shots`` labelled
images of ``c`` (and as many of each other class) and ask it to pick out ``c``'s test images
using the retrained model's penultimate features, or its output logits. The probe's balanced
accuracy is compared with chance (0.5), with the same probe on the original model, on an
untrained network of the same shape, and on raw pixels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from obliviate.data.dataset import ArrayDataset
from obliviate.lab._classifier import data_problems, load, logits, penultimate, setup
from obliviate.lab.base import Experiment, ExperimentResult, check_config, config_dict, new_figure, register, to_png
from obliviate.models.zoo import build_model
from obliviate.removal.base import METHODS
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import predict_logits

log = logging.getLogger(__name__)


@dataclass
class M2Config:
    """Defaults: digits, class 3, a one-hidden-layer MLP, three seeds (about 10 s on two busy cores)."""

    dataset: str = "digits"
    data_dir: str | None = None
    #: class-stratified training subset (None: all)
    train_subset: int | None = None
    forget_class: int = 3
    #: labelled examples per class given to the probe (the forgotten class's come from its removed training data)
    shots: int = 5
    #: random draws of the shots (the probe's numbers are means over draws)
    draws: int = 50
    #: training seeds (original, retrain and untrained network per seed)
    seeds: int = 3
    hidden: list[int] = field(default_factory=lambda: [128])
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3

    def problems(self) -> list[str]:
        """Every problem with the values (empty when all is well)."""
        p = data_problems(self.dataset, self.forget_class, self.train_subset)
        for name in ("shots", "draws", "seeds", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1; got {getattr(self, name)}.")
        if not self.hidden or min(self.hidden) < 1:
            p.append(f"hidden must list positive layer widths; got {self.hidden}.")
        return p


def probe_draws(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray, test_y: np.ndarray, c: int,
                shots: int, draws: int, seed: int) -> np.ndarray:
    """Nearest-centroid (cosine) probe from ``shots`` examples per class: is a test image class ``c``?

    One row per draw of the shots: (balanced accuracy, recall of c, false-positive rate);
    balanced accuracy is the mean of the recall and 1 - the false-positive rate (chance 0.5).
    """
    def unit(a: np.ndarray) -> np.ndarray:
        a = a - mu
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    rng = np.random.default_rng(seed)
    classes = np.unique(train_y)
    mu = train_feats.mean(0)
    test_u = unit(test_feats)
    is_c = test_y == c
    out = []
    for _ in range(draws):
        cents = np.stack([unit(train_feats[rng.choice(np.flatnonzero(train_y == k), shots, replace=False)]).mean(0)
                          for k in classes])
        said_c = classes[np.argmax(test_u @ cents.T, axis=1)] == c
        r, f = float(said_c[is_c].mean()), float(said_c[~is_c].mean())
        out.append(((r + 1 - f) / 2, r, f))
    return np.asarray(out)


def summarise(rows: np.ndarray) -> dict[str, float]:
    """Mean balanced accuracy, its spread (sd over draws and seeds), mean recall and false-positive rate."""
    return {"balanced_accuracy": float(rows[:, 0].mean()),
            "balanced_accuracy_sd": float(rows[:, 0].std(ddof=1)) if len(rows) > 1 else 0.0,
            "recall": float(rows[:, 1].mean()), "false_positive_rate": float(rows[:, 2].mean())}


def probe(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray, test_y: np.ndarray, c: int,
          shots: int, draws: int, seed: int) -> dict[str, float]:
    return summarise(probe_draws(train_feats, train_y, test_feats, test_y, c, shots, draws, seed))


SPACES = ("retrain features", "retrain logits", "original features", "original logits",
          "untrained network features", "raw pixels")


def _flat(d: ArrayDataset) -> np.ndarray:
    return d.x.reshape(len(d), -1).astype(np.float64)


def run(cfg: M2Config) -> ExperimentResult:
    check_config(cfg, "m2")
    t0 = time.perf_counter()
    bundle = load(cfg.dataset, cfg.data_dir, cfg.train_subset, cfg.forget_class)
    recipe = Recipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr)
    train, test, c = bundle.train, bundle.test, cfg.forget_class
    draws: dict[str, list[np.ndarray]] = {k: [] for k in SPACES}
    preds: list[dict[str, float]] = []
    record = None
    for seed in range(cfg.seeds):
        s = setup(bundle, c, cfg.hidden, recipe, seed)
        retrained, record = METHODS.get("retrain")().unlearn(s.original, s.task)
        untrained = build_model(s.spec, train.input_shape, bundle.n_classes, seed=seed + 1000)
        models = {"retrain": retrained, "original": s.original, "untrained network": untrained}
        for space in SPACES:
            if space == "raw pixels":
                tr, te = _flat(train), _flat(test)
            else:
                who, what = space.rsplit(" ", 1)
                read = penultimate if what == "features" else logits
                tr, te = read(models[who], train.x), read(models[who], test.x)
            draws[space].append(probe_draws(tr, train.y, te, test.y, c, cfg.shots, cfg.draws, seed))
        pred_r = predict_logits(retrained, test.x).argmax(1)
        pred_o = predict_logits(s.original, test.x).argmax(1)
        keep = test.y != c
        preds.append({"retrain_says_c_on_c": float(np.mean(pred_r[~keep] == c)),
                      "original_says_c_on_c": float(np.mean(pred_o[~keep] == c)),
                      "retrain_acc_other_classes": float(np.mean(pred_r[keep] == test.y[keep])),
                      "original_acc_other_classes": float(np.mean(pred_o[keep] == test.y[keep]))})
        log.info("m2 seed %d: retrain features %.3f", seed, draws["retrain features"][-1][:, 0].mean())
    measured: dict = {k.replace(" ", "_"): summarise(np.concatenate(v)) for k, v in draws.items()}
    measured["predictions"] = {**{k: float(np.mean([p[k] for p in preds])) for k in preds[0]},
                               "n_forgotten_train": float((train.y == c).sum()), "n_c_test": float((test.y == c).sum()),
                               "chance_balanced_accuracy": 0.5}
    return ExperimentResult(
        name="m2", claim=_claim(cfg, measured, bundle.name, _label(bundle.train.classes, c)), measured=measured,
        figure=_figure(cfg, measured, bundle.name),
        kind={f"retrain (trained from scratch without class {c})": record.kind, "original": "none",
              "untrained network": "none", "raw pixels": "none"},
        seconds=time.perf_counter() - t0, config=config_dict(cfg),
        details={"dataset": bundle.name, "forgotten class": bundle.train.classes[c] if bundle.train.classes else c,
                 "probe": f"nearest class centroid (cosine, centred) from {cfg.shots} labelled training images per "
                          f"class; 'is it class {c}?' on every test image; mean and sd over {cfg.draws} draws of "
                          f"the shots x {cfg.seeds} training seeds",
                 "retrain (last seed)": record.to_dict()})


def _label(classes: tuple[str, ...] | None, c: int) -> str:
    """``3`` on digits, ``6 (Shirt)`` where classes have names."""
    name = classes[c] if classes else str(c)
    return str(c) if name == str(c) else f"{c} ({name})"


def _claim(cfg: M2Config, m: dict, dataset: str, label: str | None = None) -> str:
    label = label or str(cfg.forget_class)
    rf, rl = m["retrain_features"], m["retrain_logits"]
    pr = m["predictions"]
    ba = rf["balanced_accuracy"]
    inputs = {"raw pixels": m["raw_pixels"]["balanced_accuracy"],
              "an untrained network": m["untrained_network_features"]["balanced_accuracy"]}
    best = max(inputs, key=inputs.__getitem__)
    if ba <= 0.6:
        verdict = "here the retrained model's features carry little of the class"
    elif ba < inputs[best] - 0.02:
        verdict = ("exact removal of the class's training data left the model able to recognise it well above "
                   f"chance, though less well than {best} do: the information is in the inputs, where no removal "
                   "of training examples reaches")
    else:
        verdict = ("exact removal of the class's training data left the model able to recognise it at least as "
                   f"well as {best} do")
    return (f"On {dataset} ({cfg.seeds} training seed(s)), the model retrained exactly without class {label} "
            f"({int(pr['n_forgotten_train'])} training images) assigns {pr['retrain_says_c_on_c']:.0%} of the "
            f"class's test images to it, {'yet' if ba > 0.6 else 'and'} a nearest-centroid probe given {cfg.shots} "
            f"labelled images per class separates them from the rest of the test set using its penultimate "
            f"features with balanced accuracy {rf['balanced_accuracy']:.3f} ± {rf['balanced_accuracy_sd']:.2f} "
            f"(recall {rf['recall']:.2f}; chance 0.5) and using its output logits with {rl['balanced_accuracy']:.3f}, "
            f"against "
            f"{m['original_features']['balanced_accuracy']:.3f} for the original model, "
            f"{m['untrained_network_features']['balanced_accuracy']:.3f} for an untrained network and "
            f"{m['raw_pixels']['balanced_accuracy']:.3f} for raw pixels: {verdict}.")


def _figure(cfg: M2Config, m: dict, dataset: str) -> bytes:
    fig, (ax,) = new_figure(1, width=7.5, height=4.0)
    names = ["retrain features", "retrain logits", "original features", "original logits",
             "untrained network features", "raw pixels"]
    keys = [n.replace(" ", "_") for n in names]
    colors = ["#d62728", "#ff9896", "#1f77b4", "#aec7e8", "#888888", "#bbbbbb"]
    ax.bar(range(len(keys)), [m[k]["balanced_accuracy"] for k in keys],
           yerr=[m[k]["balanced_accuracy_sd"] for k in keys], capsize=3, color=colors)
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(range(len(keys)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"probe balanced accuracy: 'is it class {cfg.forget_class}?'")
    ax.set_title(f"{dataset}: class {cfg.forget_class} never seen by retrain; {cfg.shots}-shot nearest-centroid probe"
                 f"\n(retrain predicts {cfg.forget_class} on {m['predictions']['retrain_says_c_on_c']:.0%} of its "
                 f"test images; mean ± sd over {cfg.draws} draws x {cfg.seeds} seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


register(Experiment(
    name="m2", title="Removal is not suppression: an exact retrain still recognises the removed class",
    mismatch="removal of observed data does not guarantee suppression", Config=M2Config, run=run,
    quick={"train_subset": 300, "epochs": 5, "draws": 5, "seeds": 1},
))

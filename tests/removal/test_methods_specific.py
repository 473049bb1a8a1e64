"""What each approximate method promises beyond the conformance suite (digits, class 3 forgotten)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import obliviate.removal  # noqa: F401
from obliviate.errors import ConfigError
from obliviate.removal import METHODS, ClassificationObjective, UnlearningTask
from obliviate.removal.approximate import amun, boundary_shrink, prune_finetune, salun, ssd
from obliviate.removal.approximate._common import fresh_parameters, seed_int
from obliviate.removal.objective import Objective
from obliviate.training.trainer import predict_logits, seeded_generator
from test_conformance import SMALL_DATA  # one source of truth for the small-data settings

NEW_METHODS = ["l1_sparse", "prune_finetune", "layer_reset", "noise", "ssd", "scrub", "salun", "boundary_shrink",
               "amun", "aru", "rmu"]


def _task(setup, **extras):
    return UnlearningTask(forget=setup["split"].forget, retain=setup["split"].retain,
                          objective=ClassificationObjective(10), recipe=setup["recipe"], seed=0, extras=extras)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _forget_tensors(setup):
    return setup["split"].forget.tensors()


def test_prune_finetune_reaches_sparsity_and_keeps_pruned_weights_at_zero(digits_class_setup):
    original = digits_class_setup["original"].model
    before = _params(original)
    for scope in ("global", "layer"):
        out, record = METHODS.get("prune_finetune")(sparsity=0.9, scope=scope, epochs=1, lr=1e-2).unlearn(
            original, _task(digits_class_setup))
        after = _params(out)
        assert record.extra["pruned_tensors"] == ["features.1.weight"]   # the output layer stays dense
        keep = prune_finetune.magnitude_masks({"w": before["features.1.weight"]}, 0.9, scope)["w"]
        w = after["features.1.weight"]
        assert (w[~keep] == 0).all(), "pruned weights moved during fine-tuning"
        assert abs(float((w == 0).float().mean()) - 0.9) < 1e-3 and abs(record.extra["sparsity"] - 0.9) < 1e-3
        assert not torch.equal(w[keep], before["features.1.weight"][keep]), "kept weights were not fine-tuned"


@pytest.mark.parametrize("which,reset,kept", [("last", "classifier", "features.1"),
                                              ("first", "features.1", "classifier")])
def test_layer_reset_reinitialises_the_chosen_layers_and_freezes_the_rest(digits_class_setup, which, reset, kept):
    original = digits_class_setup["original"].model
    before = _params(original)
    # a negligible learning rate isolates the reset from the training that follows it
    out, record = METHODS.get("layer_reset")(k=1, which=which, epochs=1, lr=1e-12).unlearn(
        original, _task(digits_class_setup))
    assert record.extra["reset_layers"] == [reset]
    fresh = fresh_parameters(dict(original.named_modules())[reset], seed_int(0, 0x1A7, 0))
    after = _params(out)
    for pname, value in fresh.items():
        assert torch.allclose(after[f"{reset}.{pname}"], value, atol=1e-8)
        assert not torch.allclose(after[f"{reset}.{pname}"], before[f"{reset}.{pname}"], atol=1e-3)
    for pname in ("weight", "bias"):
        assert torch.equal(after[f"{kept}.{pname}"], before[f"{kept}.{pname}"]), "a frozen layer changed"


def test_ssd_only_dampens_and_never_trains(digits_class_setup, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("ssd took an optimiser step")

    monkeypatch.setattr(torch.optim.Adam, "step", no_training)
    monkeypatch.setattr(torch.optim.SGD, "step", no_training)
    original = digits_class_setup["original"].model
    before = _params(original)
    ssd._MEMORY_CACHE.clear()
    method = METHODS.get("ssd")()
    out, record = method.unlearn(original, _task(digits_class_setup))
    changed = 0
    for name, p in _params(out).items():
        moved = p != before[name]
        changed += int(moved.sum())
        # a dampened weight keeps its sign and shrinks by beta <= lambda / alpha
        assert (p[moved] * before[name][moved] >= 0).all()
        assert (p[moved].abs() <= before[name][moved].abs() * 0.1 + 1e-12).all()
    assert 0 < changed <= record.extra["dampened"] and not record.extra["full_importance_cached"]
    n_train = len(digits_class_setup["split"].forget) + len(digits_class_setup["split"].retain)
    n_forget = len(digits_class_setup["split"].forget)
    assert record.steps == -(-n_train // 16) + -(-n_forget // 16)   # importance minibatches, nothing else
    # the full-data importance is reused: only the forget pass is paid again, same result
    again, record2 = method.unlearn(original, _task(digits_class_setup))
    assert record2.extra["full_importance_cached"] and record2.steps == -(-n_forget // 16)
    for name, p in _params(again).items():
        assert torch.equal(p, _params(out)[name])


def test_ssd_disk_cache_round_trips(digits_class_setup, tmp_path):
    original = digits_class_setup["original"].model
    ssd._MEMORY_CACHE.clear()
    a, _ = METHODS.get("ssd")(cache_dir=str(tmp_path)).unlearn(original, _task(digits_class_setup))
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    ssd._MEMORY_CACHE.clear()
    b, rec = METHODS.get("ssd")(cache_dir=str(tmp_path)).unlearn(original, _task(digits_class_setup))
    assert rec.extra["full_importance_cached"]
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n


def test_salun_updates_only_salient_weights(digits_class_setup):
    setup = digits_class_setup
    original = setup["original"].model
    before = _params(original)
    out, record = METHODS.get("salun")(saliency=0.3, epochs=1, lr=1e-2).unlearn(original, _task(setup))
    grads = salun.forget_gradient(copy.deepcopy(original), ClassificationObjective(10), setup["split"].forget, 128,
                                  seeded_generator(0, 0x5A0))
    masks = salun.saliency_masks(grads, 0.3)
    assert abs(record.extra["saliency_fraction"] - 0.3) < 1e-3
    moved_inside = 0
    for name, p in _params(out).items():
        assert torch.equal(p[~masks[name]], before[name][~masks[name]]), f"{name}: a non-salient weight moved"
        moved_inside += int((p[masks[name]] != before[name][masks[name]]).sum())
    assert moved_inside > 0


def test_rmu_bad_layer_lists_valid_names(digits_class_setup):
    with pytest.raises(ConfigError, match=r"did you mean 'features\.1'.*features\.1.*classifier"):
        METHODS.get("rmu")(layer="features.11").unlearn(digits_class_setup["original"].model,
                                                        _task(digits_class_setup))


def test_rmu_auto_layer_updates_only_up_to_the_last_hidden_layer(digits_class_setup):
    original = digits_class_setup["original"].model
    before = _params(original)
    out, record = METHODS.get("rmu")(**SMALL_DATA["rmu"]).unlearn(original, _task(digits_class_setup))
    after = _params(out)
    assert record.extra["layer"] == "features.1"
    assert not torch.equal(after["features.1.weight"], before["features.1.weight"])
    assert torch.equal(after["classifier.weight"], before["classifier.weight"])
    assert all(p.requires_grad for p in out.parameters())   # freezing during training is undone


def test_amun_adversarial_examples_are_misclassified_at_the_smallest_radius_tried(digits_class_setup):
    model = digits_class_setup["original"].model
    x, y = _forget_tensors(digits_class_setup)
    cfg = amun.AmunConfig(attack_steps=20, units="input")   # raw L2 radii (std units: test_adversarial_scale.py)
    x_adv, y_adv, eps, flipped = amun.adversarial_set(model, x, y, cfg, task=_task(digits_class_setup))
    assert bool(flipped.all())
    assert (y_adv != y).all() and torch.equal(y_adv, model(x_adv).argmax(-1))
    # one step down the radius grid the same attack does not cross the boundary
    bigger = eps > cfg.eps_init * 1.5
    from obliviate.removal.approximate._adversarial import pgd

    e = eps[bigger] / cfg.eps_growth
    retry = pgd(model, x[bigger], y[bigger], eps=e, steps=cfg.attack_steps, step_size=2.5 * e / cfg.attack_steps,
                norm="l2", bounds=(float(x.min()), float(x.max())))
    assert (model(retry).argmax(-1) == y[bigger]).all()
    assert ((x_adv - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()


def test_boundary_shrink_labels_are_the_attacked_predictions(digits_class_setup):
    model = digits_class_setup["original"].model
    x, y = _forget_tensors(digits_class_setup)
    cfg = boundary_shrink.BoundaryShrinkConfig(bound=0.2, step_size=8 / 255, units="input")
    x_adv, labels = boundary_shrink.nearest_wrong_labels(model, x, y, cfg, task=_task(digits_class_setup))
    crossed = labels != y
    assert crossed.float().mean() > 0.7
    assert torch.equal(model(x_adv).argmax(-1), labels)
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6


def test_amun_keeps_retain_and_the_original(digits_class_setup):
    """AMUN is xfailed in the conformance gap test (whole-class forgetting); check the rest here."""
    setup = digits_class_setup
    original = setup["original"].model
    before = _params(original)
    out, _ = METHODS.get("amun")(attack_steps=20, epochs=3).unlearn(original, _task(setup))
    retain = setup["split"].retain
    acc = lambda m: float((predict_logits(m, retain.x).argmax(1) == retain.y).mean())  # noqa: E731
    assert acc(out) >= acc(original) - 0.1
    assert all(torch.equal(p, before[n]) for n, p in original.named_parameters())


class _NotAClassifier(Objective):
    def batches(self, data, batch_size, generator, *, shuffle=True):
        yield from ()

    def loss(self, model, batch, *, reduction="mean"):
        raise NotImplementedError

    def log_probs(self, model, batch):
        raise NotImplementedError


@pytest.mark.parametrize("name", ["amun", "aru", "boundary_shrink"])
def test_adversarial_methods_need_a_classifier_objective(digits_class_setup, name):
    task = _task(digits_class_setup)
    task.objective = _NotAClassifier()
    with pytest.raises(ConfigError, match="ClassificationObjective"):
        METHODS.get(name)().unlearn(digits_class_setup["original"].model, task)


@pytest.fixture(scope="module")
def finetuned_forget_logits(digits_class_setup):
    model, _ = METHODS.get("finetune")(**SMALL_DATA["finetune"]).unlearn(digits_class_setup["original"].model,
                                                                         _task(digits_class_setup))
    return predict_logits(model, digits_class_setup["split"].forget.x)


@pytest.mark.parametrize("name", NEW_METHODS)
def test_method_differs_from_plain_finetuning(digits_class_setup, finetuned_forget_logits, name):
    model, _ = METHODS.get(name)(**SMALL_DATA[name]).unlearn(digits_class_setup["original"].model,
                                                            _task(digits_class_setup))
    assert not np.allclose(predict_logits(model, digits_class_setup["split"].forget.x), finetuned_forget_logits,
                           atol=1e-4), f"{name} produced the fine-tuned model"

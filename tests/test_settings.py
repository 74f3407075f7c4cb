"""settings: one place for a run's defaults and checks, used by the command line and the API."""

import re

import pytest

from latentdim.errors import LatentdimError
from latentdim.settings import Settings, check_run, for_data, resumed_config, training_config
from latentdim.training import TrainConfig


def test_defaults_per_schedule_and_baseline():
    assert training_config() == TrainConfig()
    assert training_config(schedule="reference") == TrainConfig.reference()
    assert training_config(use_mask=False).max_steps == 10_000  # the WAE baseline's budget (NO_MASK_MAX_STEPS)
    assert training_config(use_mask=False, max_steps=7).max_steps == 7  # an explicit limit wins


def test_options_override_a_given_config_and_are_checked():
    base = TrainConfig(batch_size=32, max_steps=100)
    got = training_config(base, max_steps=50, closing_pressure=2.0, loss_budget=0.0)
    assert (got.batch_size, got.max_steps, got.closing_pressure, got.loss_budget) == (32, 50, 2.0, 0.0)
    assert base.max_steps == 100  # the caller's config is not changed
    fast = training_config(compile="inductor", precision="bfloat16")
    assert (fast.compile, fast.precision) == ("inductor", "bfloat16")
    for kwargs, words in [
        ({"max_steps": 2.5}, "max_steps must be an integer"),
        ({"batch_size": True}, "batch_size must be an integer"),
        ({"batch_size": 0}, "batch size must be at least 1"),
        ({"max_steps": 0}, "max steps must be at least 1"),
        ({"closing_pressure": -1.0}, "--closing-pressure must be >= 0"),
        ({"loss_budget": 1.0}, "--loss-budget must be in [0, 1)"),
        ({"schedule": "reference", "loss_budget": 0.1}, "apply to the latentdim schedule only"),
        ({"compile": "nonsense"}, "--compile: unknown compile backend 'nonsense': use inductor"),
        ({"precision": "float16"}, "--precision must be float32 or bfloat16"),
    ]:
        with pytest.raises(LatentdimError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            training_config(**kwargs)


def test_for_data_chooses_by_kind_and_keeps_what_was_set():
    vectors, images = for_data(TrainConfig(), images=False), for_data(TrainConfig(), images=True)
    # docs/design.md and SPEC §3: MSE/Adam/hold 500/mask rate 4e-3 for vectors, BCE/RMSProp/1000/1e-3 for images
    assert (vectors.reconstruction, vectors.ae_optimiser, vectors.eliminate_hold, vectors.lr_mask) == ("mse", "adam", 500, 4e-3)
    assert (images.reconstruction, images.ae_optimiser, images.eliminate_hold, images.lr_mask) == ("bce", "rmsprop", 1000, 1e-3)
    assert vectors.loss_budget == images.loss_budget == 0.02 and vectors.closing == images.closing == "eliminate"
    assert vectors.warmup_plateau is True
    pressure = for_data(TrainConfig(loss_budget=0.0), images=False)
    assert pressure.closing == "pressure" and pressure.loss_budget == 0.0  # a budget of 0 falls back to the pressure
    kept = for_data(TrainConfig(ae_optimiser="rmsprop", eliminate_hold=42), images=False)
    assert (kept.ae_optimiser, kept.eliminate_hold) == ("rmsprop", 42)


def test_check_run():
    check_run(4, None, 600.0, 10)
    for args, words in [((0, None, None, 10), "capacity must be a positive integer"),
                        ((True, None, None, 10), "capacity must be a positive integer"),
                        ((4, 0, None, 10), "at least 1 step"), ((4, None, 0.0, 10), "must be positive"),
                        ((4, None, None, 1), "fid_samples")]:
        with pytest.raises(LatentdimError, match=words):
            check_run(*args)


def test_resumed_config_reads_old_checkpoints_as_they_ran():
    old = resumed_config({"config": {"budget_hold": 300, "max_steps": 10}})  # written before the closing fields
    assert (old.closing, old.eliminate_retries, old.eliminate_hold, old.ae_optimiser) == ("pressure", 0, 300, "rmsprop")
    new = resumed_config({"config": {"closing": "eliminate", "eliminate_hold": 500, "ae_optimiser": "adam"}})
    assert (new.closing, new.eliminate_hold, new.ae_optimiser) == ("eliminate", 500, "adam")


def test_settings_fields_are_the_keywords_of_estimate():
    import inspect

    from latentdim.api import estimate

    params = inspect.signature(estimate).parameters
    for name, f in Settings.__dataclass_fields__.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default == f.default
        assert re.search(rf"^\s+(\w+, )?{name}(, \w+)?:", Settings.__doc__, re.M)  # documented there
    with pytest.raises(TypeError, match="estimate.. got an unexpected keyword argument 'no_such_option'"):
        estimate([[0.0, 1.0]] * 80, 2, no_such_option=1)

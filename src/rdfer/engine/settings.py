"""A run's settings checked as a whole before any work starts (the validate-first pass of every command).

    check_run_settings(config)          # -> the model's config; RdferError (one line) if anything is off

The loader (`rdfer.config`) checks each key (type, range, list length) and the
schema the checks across a section's keys; what needs a model is checked here:
`model.options` against the named model's own config (its keys, types and
ranges: `rdfer.models.model_config`, no weights loaded) and the size of one
batch (batch size x frames x pixels), a product that no single range bounds.
`rdfer.engine.fit` calls this before loading data, and every command that
trains (`rdfer.cli.preflight`) before it writes anything.
"""

import re
from typing import Optional

from rdfer.errors import RdferError
from rdfer.models import model_config
from rdfer.schema import TrainConfig

MAX_BATCH_BYTES = 2**36  # 64 GiB of float32 frames in one batch: beyond any machine rdfer runs on


def check_run_settings(config: TrainConfig, num_classes: Optional[int] = None, origins: Optional[dict] = None,
                       default: str = "the config"):
    """The model config `config` trains (checked), after checking the batch bound; `num_classes` from the data.

    `origins` ({key: "config file F" / "--set K=V"}, from `rdfer.config.load_config`) names, in a refusal, the
    source that set the model option (or batch size) at fault; `default` when none did.
    """
    origins = origins or {}

    def origin(*prefixes: str) -> str:
        for prefix in prefixes:
            found = [where for key, where in origins.items() if key.startswith(prefix)]
            if found:
                return found[-1]
        return default

    extra = {} if num_classes is None else {"num_classes": num_classes}
    try:
        built = model_config(config.model.name, **extra, **config.model.options)
    except (RdferError, TypeError) as error:  # TypeError: an option an entry point takes as an argument of its own
        named = re.search(r"option:? (\w+) =", str(error))  # the model's own message names the option
        source = origins.get(f"model.options.{named.group(1)}") if named else None
        reason = str(error) if isinstance(error, RdferError) else f"model {config.model.name}: {error}"
        raise RdferError(f"{source or origin('model.options', 'model.')}: model.options: {reason}") from None
    try:
        check_batch_size(config, built)
    except RdferError as error:
        raise RdferError(f"{origin('optim.batch_size', 'model.options')}: {error}") from None
    return built


def check_batch_size(config: TrainConfig, model_config) -> None:
    """Stop (one line) when one batch of frames could not fit in any memory: each setting has a range, but
    their product (batch size x frames x pixels) bounds the work of a step."""
    check_batch_bytes(config.optim.batch_size, getattr(model_config, "num_frames", 0),
                      getattr(model_config, "input_size", 0),
                      ("optim.batch_size", "model.options.num_frames", "model.options.input_size"))


def check_batch_bytes(batch_size: int, frames: int, side: int, names=("--batch-size", "frames", "frame size")):
    """The batch bound for any command that batches clips: `names` are the settings to lower, as the user
    gives them (config keys or options)."""
    frames, side = int(frames or 0), int(side or 0)
    size = int(batch_size) * frames * 3 * side * side * 4
    if size > MAX_BATCH_BYTES:
        lower = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise RdferError(f"one batch would hold {size / 2**30:,.0f} GiB of frames ({names[0]} {batch_size} x "
                         f"{frames} frames x {side}x{side} pixels), more than the {MAX_BATCH_BYTES / 2**30:.0f} GiB "
                         f"rdfer allows: lower {lower}")

"""Model checkpoints that rebuild the model from the file alone.

    state = model_state(model)      # {"model_name", "model_config", "model"}
    torch.save({**state, "optimizer": ...}, path)   # the engine adds its own keys
    model = load_model(path)        # same architecture, same weights, same preprocessing

A model is anything built by `rdfer.create_model` whose `.config` is a
dataclass with a `name` field; `create_model(name, **other fields)` must
rebuild it. Fields named `*pretrained` are set to None when rebuilding (the
weights come from the checkpoint; nothing is downloaded) and restored in
`model.config` afterwards.
"""

import dataclasses
from pathlib import Path
from typing import Union

from torch import nn

from rdfer.errors import RdferError
from rdfer.models._factory import create_model
from rdfer.schema import config_to_dict
from rdfer.utils.checkpoint import read_checkpoint

CHECKPOINT_KEYS = ("model_name", "model_config", "model")
# Config fields added after checkpoints were written, with the values that rebuild what those
# files hold: before issue 17 the detector's F_d was one linear layer over the time mean (its
# weights are spread over the 16 time positions on loading, detector.py) and blended two frames;
# before the guide (issue 17 too) the detector had no evidence head; before the scan-time fix the
# "moments" locator timed scanned frame j at 4j + 2 instead of 4j, the frame it scans.
LEGACY_FIELDS = {"detector_locator": "linear", "detector_context": 1, "detector_kernel": "linear",
                 "detector_guide": False, "detector_scan_offset": 2.0}


def model_state(model: nn.Module) -> dict:
    """{"model_name": str, "model_config": dict of primitives, "model": state_dict}."""
    return {
        "model_name": model.config.name,
        "model_config": config_to_dict(model.config),
        "model": model.state_dict(),
    }


def load_model(path_or_dict: Union[str, Path, dict], map_location="cpu") -> nn.Module:
    """Rebuild a model from a checkpoint written with `model_state` (plus any extra keys).

    Args:
        path_or_dict: a checkpoint file, or the dict already loaded from one.
        map_location: passed to torch.load.
    Returns:
        the model with the checkpoint's weights, in eval mode.
    Raises:
        RdferError: the file is missing or unreadable, is not an rdfer checkpoint,
            names an unknown model, or its weights do not fit the rebuilt model.
    """
    where = "the checkpoint dict" if isinstance(path_or_dict, dict) else f"checkpoint {path_or_dict}"
    state = path_or_dict if isinstance(path_or_dict, dict) else read_checkpoint(Path(path_or_dict), map_location)
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise RdferError(f"{where} is not an rdfer model checkpoint (it lacks {', '.join(missing)}); "
                         "pass a checkpoints/last.pt or best.pt written by `rdfer train`")

    stored = state["model_config"]
    if "d_max" in stored:  # a model with the detector's fields (VideoConfig)
        stored = {**LEGACY_FIELDS, **stored}
    config = {key: tuple(value) if isinstance(value, list) else value for key, value in stored.items() if key != "name"}
    weights_names = {key: config[key] for key in config if key.endswith("pretrained")}
    try:
        model = create_model(state["model_name"], **{**config, **dict.fromkeys(weights_names)})
    except (RdferError, TypeError) as error:
        raise RdferError(f"{where}: cannot rebuild model {state['model_name']!r} from its config ({error}); "
                         "was it written by another rdfer version?") from error

    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:  # missing / unexpected keys, other shapes
        raise RdferError(f"{where}: the weights do not fit model {state['model_name']!r}: {error}") from error
    if weights_names:
        model.config = dataclasses.replace(model.config, **weights_names)
    return model.eval()

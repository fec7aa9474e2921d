"""Models: frame encoders, the key-expression detecting network, the
dual-stream hierarchical network, and the paper's Table VI baselines.

Importing this package registers every model (`_registry.py`); build one with
`create_model(name, **config fields)` (`_factory.py`; `model_config` checks the same fields without
building the model). Every model is a
`base.VideoModel` built from its config by `_builder.build_video_model`.
"""

from rdfer.models._factory import create_model, model_config
from rdfer.models._registry import list_models, register_model
from rdfer.models import encoders, detector, dual_stream, rdfer_net, mini_xception, baselines, clip  # noqa: F401  (registers)

__all__ = ["create_model", "list_models", "model_config", "register_model"]

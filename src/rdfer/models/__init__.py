"""Models: frame encoders, the key-expression detecting network, the
dual-stream hierarchical network, and the paper's Table VI baselines.

Importing this package registers every model (see `rdfer.registry`).
"""

from rdfer.models import encoders, detector, dual_stream, rdfer_net, mini_xception, baselines  # noqa: F401

"""`rdfer study`'s figure: last-epoch WAR per loss strategy and noise setting, and memorisation per epoch."""

from pathlib import Path

import numpy as np

from rdfer.utils.outputs import atomic_output


def fig_study(path: Path, summary: dict, memorised: dict, settings, strategies) -> None:
    """Last WAR per strategy and noise setting; memorisation per epoch, one panel per setting.

    Args:
        summary: {(setting name, strategy): {"war": (mean, sd), ...}} over seeds.
        memorised: {(setting name, strategy): per seed, the share of flipped training clips predicted as
            their given label, per epoch}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(settings), figsize=(6 + 4.5 * len(settings), 4.4))
    left = axes[0]
    width = 0.8 / len(settings)
    x = np.arange(len(strategies))
    for k, setting in enumerate(settings):
        cells = [summary[setting.name, s]["war"] for s in strategies]
        left.bar(x + k * width, [c[0] for c in cells], width, yerr=[c[1] for c in cells], capsize=2,
                 label=f"{setting.noise:.0%} {setting.noise_type}")
    left.set_xticks(x + width * (len(settings) - 1) / 2, strategies, rotation=35, ha="right", fontsize=8)
    left.set_ylabel("last-epoch test WAR (%)")
    left.legend(fontsize=8)
    low = min(summary[s.name, st]["war"][0] for s in settings for st in strategies)
    left.set_ylim(max(0, low - 15), 100)

    colours = plt.get_cmap("tab20")
    for axis, setting in zip(axes[1:], settings):
        for i, strategy in enumerate(strategies):
            curves = memorised[setting.name, strategy]
            style = "-" if strategy in ("ce", "agreement") else ("--" if "agreement" in strategy else ":")
            axis.plot(np.arange(1, len(curves[0]) + 1), 100 * np.mean(curves, axis=0), style,
                      color=colours(i % 20), label=strategy, linewidth=2 if strategy in ("ce", "agreement") else 1.2)
        axis.set_xlabel("epoch")
        axis.set_title(f"memorisation, {setting.noise:.0%} {setting.noise_type}", fontsize=10)
    axes[1].set_ylabel("flipped training clips predicted as their wrong label (%)")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    try:
        with atomic_output(path) as temp:
            fig.savefig(temp, dpi=100, format="png")
    finally:
        plt.close(fig)

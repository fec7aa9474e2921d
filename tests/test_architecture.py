"""The package's structure, as docs/architecture.md draws it.

Checked here: no import cycle among rdfer's modules; imports point down the LAYERS (or stay
inside their package) and none of the FORBIDDEN ones; rdfer's own modules are imported at
the top of each file, except the LAZY_TARGETS (a heavy optional dependency) and the
LAZY_ALLOWED exceptions; building the CLI parser loads no heavy module; models and losses
load no YAML loader.
"""

import ast
import subprocess
import sys
from pathlib import Path

from test_predict_support import feat_videos  # noqa: F401

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "torchvision", "matplotlib", "cv2", "sklearn", "cleanlab", "omegaconf", "scipy")
# Not imported by `rdfer predict PHOTO` (the default model and detector run on onnxruntime).
TORCH_FREE_PREDICT = ("torch", "torchvision", "matplotlib", "sklearn", "scipy", "pandas", "h5py", "onnx")

# Each top-level module or package of rdfer and its layer: imports point to a lower layer or
# stay inside their own package (docs/architecture.md draws this).
LAYERS = {
    "cli": 4, "__main__": 4, "app": 4,  # app: the web page, beside the command line
    "audit": 3,  # label auditing, one package: folds (engine's fit), verdict, report, review, relabel
    "engine": 3, "inference": 3, "analysis": 3, "demo": 3,
    "figures": 2,  # every figure; drawn from what the layer above gives them
    "models": 1, "losses": 1, "data": 1, "synth": 1,
    "schema": 0, "config": 0,  # what a config is; loading one (YAML, base:, --set)
    "labels": 0, "metrics": 0, "stats": 0, "errors": 0, "utils": 0, "": 0,  # "": rdfer/__init__.py
}
# Imports within one layer that the layout rules out all the same.
FORBIDDEN = {
    ("models", "data"): "models never imports data (a model knows tensors, not datasets)",
    ("analysis", "engine"): "analysis reads saved files, not live objects",
    ("analysis", "inference"): "analysis reads saved files, not live objects",
    ("models", "config"): "models know the config schema (rdfer.schema), not the YAML loader",
    ("losses", "config"): "losses know the config schema (rdfer.schema), not the YAML loader",
}
# Imports that break the rules today, each with why it is allowed for now (empty: none).
ALLOWED = {}
# Modules that may be imported inside a function (outside rdfer.cli, whose lazy loading of the
# library keeps every command's start-up short): the ones that load a heavy optional dependency.
LAZY_TARGETS = {
    "rdfer.figures.paper": "matplotlib",
    # torch: `rdfer predict`'s default path runs on onnxruntime and never imports it (docs/predict.md).
    "rdfer.inference.mtcnn_nets": "torch",
    "rdfer.inference.export": "torch (to make the cached ONNX files)",
    "rdfer.utils.device": "torch",
    "rdfer.utils.checkpoint": "torch",
}
# Function-level imports of rdfer's own modules left today, each with why (empty: none).
_PREDICT_START = "keeps it out of `rdfer predict`'s start-up (docs/predict.md)"
LAZY_ALLOWED = {
    ("rdfer.inference.predictors", "rdfer.models.mini_xception"): "the models package (every model) " + _PREDICT_START,
    ("rdfer.inference.predictors", "rdfer.models.checkpoint"): "the models package (every model) " + _PREDICT_START,
    ("rdfer.inference.predict", "rdfer.data.sampling"): "the data package (its datasets) " + _PREDICT_START,
    ("rdfer.inference.predict", "rdfer.models.detector"): "the models package (every model) " + _PREDICT_START,
    # inference/startup.py times `rdfer predict`'s imports in a fresh process: the imports
    # inside its probe() are what it measures.
    ("rdfer.inference.startup", "rdfer.inference.runner"): "measured",
    ("rdfer.inference.startup", "rdfer.inference"): "measured",
    ("rdfer.inference.startup", "rdfer.inference.video"): "measured",
}


def test_building_the_cli_parser_imports_no_heavy_module():
    # Every rdfer command builds the whole parser first: a heavy import here costs every command
    # (matplotlib through rdfer.analysis cost 0.5 s before).
    code = ("import sys; from rdfer.cli import build_parser; build_parser(); "
            f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_default_predict_on_a_photo_imports_no_torch(feat_videos, tmp_path):  # noqa: F811
    # `rdfer predict PHOTO` (built-in model, MTCNN) runs on onnxruntime: importing torch costs more than a
    # second of its start-up. The cached ONNX files are made first (that needs torch), as `make setup` does.
    from rdfer.inference.model_cache import prepare

    prepare()
    photo, out = feat_videos["45-m7-di-ph.jpg"], tmp_path / "out"
    code = ("import sys; from rdfer.cli import main; status = main(sys.argv[1:]); "
            f"print(status, ' '.join(sorted(m for m in {TORCH_FREE_PREDICT!r} if m in sys.modules)), "
            "'onnxruntime' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "predict", str(photo), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, check=True)
    status, *loaded, onnxruntime = done.stdout.splitlines()[-1].split()
    assert (status, loaded, onnxruntime) == ("0", [], "True"), done.stdout + done.stderr
    assert "1 ok" in done.stdout and "1 face track(s)" in done.stdout  # the face was found and the model ran


def test_models_and_losses_load_no_config_loader():
    # They read the schema's dataclasses; YAML and OmegaConf are the loader's (rdfer.config).
    code = ("import sys, rdfer.models, rdfer.losses; "
            "print(' '.join(sorted(m for m in ('yaml', 'omegaconf', 'rdfer.config') if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_no_import_cycle_among_rdfer_modules():
    assert _cycles(_graph()) == []


def test_imports_point_down_the_layers():
    graph = _graph()
    unknown = sorted({_top(name) for name in graph} - set(LAYERS))
    assert unknown == [], f"new top-level modules: give them a layer in LAYERS and docs/architecture.md"
    wrong = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            source, dest = _top(name), _top(target)
            if source == dest:
                continue
            if LAYERS[dest] > LAYERS[source]:
                why = f"upward ({source} is layer {LAYERS[source]}, {dest} layer {LAYERS[dest]})"
            elif (source, dest) in FORBIDDEN:
                why = FORBIDDEN[source, dest]
            else:
                continue
            if (name, target) not in ALLOWED:
                wrong.append(f"{name} imports {target}: {why}")
    assert wrong == []


def test_function_level_imports_only_for_heavy_optional_modules():
    # A function-level import of the package's own modules hides a cycle or an upward import.
    left = [f"{name}:{line} imports {target} inside a function"
            for name, line, target in _function_level_imports()
            if target not in LAZY_TARGETS and (name, target) not in LAZY_ALLOWED]
    assert left == []


# ----------------------------------------------------------------------------- how the checks read the code


def _modules() -> dict:
    """{dotted module name: file} of every module under src/rdfer."""
    modules = {}
    for path in sorted((SRC / "rdfer").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _module_level_imports(name: str, path: Path, modules: dict) -> set:
    """The rdfer modules that `name` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "rdfer")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                if base.split(".")[0] != "rdfer":
                    continue
                for alias in node.names:  # `from rdfer.models import encoders` imports a submodule
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.dump(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text()).body)
    return found - {name}


def _graph() -> dict:
    modules = _modules()
    return {name: _module_level_imports(name, path, modules) for name, path in modules.items()}


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _function_level_imports() -> list:
    """(module, line, imported rdfer module) of every import of rdfer inside a function, outside rdfer.cli."""
    found = []
    for name, path in _modules().items():
        if name == "rdfer.cli" or name.startswith(("rdfer.cli.", "rdfer.__main__")):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    targets = [node.module or ""]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                found += [(name, node.lineno, t) for t in targets if t.split(".")[0] == "rdfer"]
    return sorted(set(found))


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layering_check_sees_imports_inside_if_and_try(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\ntry:\n    from rdfer import config\nexcept ImportError:\n    pass\n"
                      "if True:\n    import rdfer.labels\n"
                      "def f():\n    from rdfer.cli import main\n")  # function-level: not counted
    assert _module_level_imports("rdfer.m", module, {"rdfer.config": None}) == {"rdfer.config", "rdfer.labels"}

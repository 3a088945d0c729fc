# Two commands do everything on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of this torch lies on the development machines' disk; any other pick downloads a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
# OpenMP threads that busy-wait make concurrent torch processes thrash on small machines, so the test suite (which
# starts multi-process runs) lets idle threads sleep. Single-process jobs (demo, benchmarks) keep OpenMP's default:
# PASSIVE wakes sleeping threads for every small op: KV-cached sampling ran at 98 vs 182 images/s on 2 cores.
TEST_ENV := OMP_WAIT_POLICY=PASSIVE

.PHONY: demo demo-shipped demo-emoji demo-train app test test-slow quality style bench gpu-check fashion-mnist emoji clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	touch $@

$(VENV)/.installed-%: setup.cfg pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -e ".[$*]"
	touch $@

# Debian's dataset-fashion-mnist when the files are missing and apt is usable; otherwise hf_vqgen.data falls back
# to the Hub copy (needs internet).
fashion-mnist:
	@if [ -n "$$HF_VQGEN_FASHION_MNIST_DIR" ] || [ -f "$(FASHION_MNIST_DIR)/train-images-idx3-ubyte.gz" ]; then \
		echo "Fashion-MNIST: local IDX files found."; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; } \
		|| echo "Fashion-MNIST: apt failed; the Hub copy will be used."; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get install -y dataset-fashion-mnist || echo "Fashion-MNIST: apt failed; the Hub copy will be used."; \
	else \
		echo "Fashion-MNIST: no local files and no usable apt; the Hub copy will be used."; \
	fi

# Emoji images (Noto Color Emoji, Twemoji, OpenMoji) fetched with `npm pack`, checksummed and rendered once into a
# `datasets` folder in ~/.cache/hf_vqgen/emoji (or $HF_VQGEN_EMOJI_DIR); `load_image_dataset("emoji")` reads it.
emoji: $(VENV)/.installed-emoji
	$(BIN)/python -m hf_vqgen.data.emoji

OUTPUTS ?= outputs
# Pipelines trained with the README's recipes, shipped in the repository (see pretrained/README.md).
SHIPPED ?= pretrained
# `make demo` samples from the shipped pipelines (about a minute); `make demo TRAIN=1` (or no shipped pipelines)
# retrains the chain with short versions of the recipes (examples/recipes/*.args) in ~15 minutes on 2 CPU cores.
TRAIN ?=
DEMO_STEPS ?= 800
DEMO_PRIOR_STEPS ?= 500
demo: $(VENV)/.installed-dev fashion-mnist
	@if [ -z "$(TRAIN)" ] && [ -f $(SHIPPED)/fashion-mnist-ar/model_index.json ]; then \
		$(MAKE) --no-print-directory demo-shipped; else $(MAKE) --no-print-directory demo-train; fi

demo-shipped: $(VENV)/.installed-dev
	$(BIN)/python examples/sample.py --pipeline $(SHIPPED)/fashion-mnist-ar --output_dir $(OUTPUTS)/ar --guidance_scale 1.5
	$(BIN)/python examples/sample.py --pipeline $(SHIPPED)/fashion-mnist-diffusion --output_dir $(OUTPUTS)/diffusion \
		--num_inference_steps 8 --guidance_scale 2 --gif
	@echo "Wrote $(OUTPUTS)/ar/samples.png (one row per class) and completions.png (test images, their reconstructions,"
	@echo "      then completed from their top rows), $(OUTPUTS)/diffusion/samples.png, completions.png (inpainting the"
	@echo "      rows below) and reverse_process.gif / reverse_process.png (the reverse diffusion, step by step)"
	@if [ -f $(SHIPPED)/emoji-ar/model_index.json ] && [ -f $(SHIPPED)/emoji-diffusion/model_index.json ]; then $(MAKE) --no-print-directory demo-emoji; fi

# The emoji pipelines (64x64 RGB, 16x16 tokens, category x style), sampled with the settings saved with them: completes
# the test images shipped with them, so the emoji data is not needed; the reverse diffusion also at a low and a high
# temperature.
demo-emoji: $(VENV)/.installed-dev
	$(BIN)/python examples/sample.py --pipeline $(SHIPPED)/emoji-ar --output_dir $(OUTPUTS)/emoji-ar \
		--samples_per_class 2 --classes_per_row 3 --images_dir $(SHIPPED)/emoji-ar/test_images
	$(BIN)/python examples/sample.py --pipeline $(SHIPPED)/emoji-diffusion --output_dir $(OUTPUTS)/emoji-diffusion \
		--samples_per_class 2 --classes_per_row 3 --gif --strip_temperatures 0.5 2 \
		--images_dir $(SHIPPED)/emoji-ar/test_images
	@echo "Wrote $(OUTPUTS)/emoji-ar/ and $(OUTPUTS)/emoji-diffusion/ with each pipeline's saved sampling defaults:"
	@echo "      samples.png (one row per category, its three styles side by side),"
	@echo "      completions.png (from the first 4 and 8 of 16 token rows), reverse_process_t0.5.png / _t2.png and the GIF"

demo-train: $(VENV)/.installed-dev fashion-mnist
	$(BIN)/python examples/train_vqvae.py @examples/recipes/vqvae_fashion_mnist.args \
		--output_dir $(OUTPUTS)/vqvae --max_train_steps $(DEMO_STEPS) --lr_warmup_steps 50 --report_to none
	$(BIN)/python examples/encode_dataset.py --vqvae_name_or_path $(OUTPUTS)/vqvae --output_dir $(OUTPUTS)/tokens
	$(BIN)/python examples/train_prior.py @examples/recipes/ar_fashion_mnist.args --vqvae_name_or_path $(OUTPUTS)/vqvae \
		--tokens_dir $(OUTPUTS)/tokens --output_dir $(OUTPUTS)/ar-pipeline --max_train_steps $(DEMO_PRIOR_STEPS) \
		--lr_warmup_steps 50 --validation_steps 100000 --checkpointing_steps 100000 --report_to none
	$(BIN)/python examples/sample.py --pipeline $(OUTPUTS)/ar-pipeline --output_dir $(OUTPUTS)/samples
	@echo "Wrote $(OUTPUTS)/vqvae/reconstructions.png, $(OUTPUTS)/vqvae/eval_results.json,"
	@echo "      $(OUTPUTS)/samples/samples.png (one row per class) and $(OUTPUTS)/samples/completions.png"

# The web demo (examples/app.py, Gradio) over the shipped pipelines on http://127.0.0.1:7860 (APP_ARGS="--pipeline
# DIR_OR_REPO_ID ... --port N" to change); Ctrl-C stops it.
APP_ARGS ?=
app: $(VENV)/.installed-app fashion-mnist
	@echo "Starting the web demo; open the URL it prints (http://127.0.0.1:7860 unless --port says otherwise)."
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python examples/app.py $(APP_ARGS)

test: $(VENV)/.installed-test
	$(TEST_ENV) $(BIN)/python -m pytest tests

test-slow: $(VENV)/.installed-test
	$(TEST_ENV) $(BIN)/python -m pytest tests -m slow

quality: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

style: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# One job at a time: two torch processes on a small machine distort each other's figures.
bench: $(VENV)/.installed-dev fashion-mnist
	$(BIN)/python benchmarks/bench_tokenizer_recipe.py --variants recipe stock
	$(BIN)/python benchmarks/calibrate_metrics.py
	$(BIN)/python benchmarks/bench_throughput.py --tokenizer benchmarks/results/runs/recipe
	$(BIN)/python benchmarks/bench_ar_recipe.py
	$(BIN)/python benchmarks/bench_ar_sampling.py --pipeline benchmarks/results/runs/ar --repeats 5
	$(BIN)/python benchmarks/bench_diffusion_recipe.py
	$(BIN)/python benchmarks/baseline_ddpm.py --num_samples 2000
	$(BIN)/python benchmarks/bench_sampling_speed.py --ar_pipeline benchmarks/results/runs/ar --diffusion_pipeline benchmarks/results/runs/diffusion-1
	$(BIN)/python benchmarks/report.py

# What a GPU machine does with the package (environment, training throughput and memory of the emoji recipes' models,
# sampling latency, 2 processes on >= 2 GPUs) in <= 8 minutes on one H100/H200-class GPU, on synthetic data, into
# benchmarks/results/accelerator_check.{json,md}. Needs a CUDA torch in .venv (see benchmarks/accelerator_check.py).
gpu-check: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/accelerator_check.py

clean:
	rm -rf $(VENV) $(OUTPUTS) build *.egg-info .pytest_cache .ruff_cache

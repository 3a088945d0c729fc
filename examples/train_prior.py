#!/usr/bin/env python
"""Train a prior over VQ-VAE token grids with Accelerate and save the whole pipeline.

    accelerate launch examples/train_prior.py --prior_type ar --vqvae_name_or_path outputs/vqvae \
        --tokens_dir outputs/tokens --output_dir outputs/ar-pipeline
    accelerate launch examples/train_prior.py --prior_type diffusion --corruption absorbing --objective x0 \
        --vqvae_name_or_path outputs/vqvae --tokens_dir outputs/tokens --output_dir outputs/diffusion-pipeline

Without `--tokens_dir` the image dataset (`--dataset_name`) is encoded once with the tokenizer and cached in
`output_dir/tokens`. `--prior_type ar` trains a stock `GPT2LMHeadModel` with next-token cross entropy on the code
positions and saves a `VQGenPipeline`; `--prior_type diffusion` trains a stock `BertForMaskedLM` denoiser (see
`hf_vqgen.training.prior_batches.build_diffusion_batch` for the two objectives) and saves a `DiscreteDiffusionPipeline`.
Both end with `eval_results.json` (held-out loss in bits per token).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from hf_vqgen import TokenLayout, VQVAEModel, load_image_dataset
from hf_vqgen.data import (
    encode_image_dataset,
    label_column_sizes,
    load_token_dataset,
    save_token_dataset,
    tokenizer_identity,
    validate_token_dataset,
)
from hf_vqgen.image_utils import image_grid
from hf_vqgen.model_cards import card_command, model_facts, recorded_data_source, training_context, write_model_card
from hf_vqgen.pipelines.token_pipeline import TOKENIZER_HASH_KEY
from hf_vqgen.publishing import check_hub_access, push_or_explain
from hf_vqgen.training import init_trackers, load_checkpoint, resolve_resume_checkpoint, save_checkpoint
from hf_vqgen.training.accelerator import build_accelerator, loader_generator
from hf_vqgen.training.class_balance import ClassBalancedSampler, class_shares
from hf_vqgen.training.export import export_atomically, recover_interrupted_export
from hf_vqgen.training.loop import backward_and_step, out_of_time, resumed_batches
from hf_vqgen.training.prior_batches import PRIOR_ADAM_BETAS, bits_per_token, weight_decay_groups
from hf_vqgen.training.prior_kinds import PRIOR_KINDS, AutoregressivePrior, DiscreteDiffusionPrior, PriorConfig
from hf_vqgen.training.run_config import remember_run_settings
from hf_vqgen.training.run_lock import hold_output_dir
from hf_vqgen.training.script_arguments import parse_prior_arguments
from hf_vqgen.utils import peak_rss_mib, portable_path


logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_prior_arguments(argv, __doc__)


def load_tokens(args, vqvae: VQVAEModel, accelerator: Accelerator):
    """(train, eval) token datasets, checked whole against the tokenizer, and their number of classes (0 with
    `--unconditional`, counted on the full train split); encoded from images once when needed."""
    tokens_dir = args.tokens_dir or str(Path(args.output_dir) / "tokens")
    if args.tokens_dir is not None:
        record_token_source(args, load_token_dataset(tokens_dir, vqvae)[1])
    args.dataset_name = args.dataset_name or recorded_data_source(args.vqvae_name_or_path)
    if args.dataset_name is None:
        raise ValueError(
            f"--vqvae_name_or_path {args.vqvae_name_or_path} records no training data: pass --dataset_name (the images "
            "to encode) or --tokens_dir."
        )
    args.label_columns = args.label_columns or ["label"]
    source = {"dataset_name": portable_path(args.dataset_name), "label_columns": list(args.label_columns)}
    if args.tokens_dir is None and not Path(tokens_dir).is_dir():
        splits = {}
        for split in ("train", args.eval_split):
            splits[split] = encode_image_dataset(
                vqvae, load_image_dataset(args.dataset_name, split=split, label_column=args.label_columns), accelerator
            )
        if accelerator.is_main_process:
            save_token_dataset(
                datasets.DatasetDict(splits), tokens_dir, tokenizer_identity(vqvae) | {"source": source}
            )
        accelerator.wait_for_everyone()
    tokens, identity = load_token_dataset(tokens_dir, vqvae)
    if args.tokens_dir is None and identity.get("source", source) != source:  # the tokens cached by an earlier run
        raise ValueError(
            f"{tokens_dir} holds tokens of {identity['source']}, encoded by an earlier run into this --output_dir, "
            f"not of --dataset_name {args.dataset_name} --label_columns {' '.join(args.label_columns)}: delete that "
            "folder to encode again, or pass another --output_dir."
        )
    missing = [split for split in ("train", args.eval_split) if split not in tokens]
    if missing:
        raise ValueError(f"The token dataset {tokens_dir} has no {missing} split (it has {list(tokens)}).")
    tokens = datasets.DatasetDict({split: tokens[split] for split in ("train", args.eval_split)})
    num_classes = None if args.unconditional else count_classes(tokens["train"])
    validate_token_dataset(
        tokens, vqvae.config.num_vq_embeddings, vqvae.latent_shape[0] * vqvae.latent_shape[1], num_classes
    )
    train = tokens["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    return train.with_format("torch"), tokens[args.eval_split].with_format("torch"), num_classes or 0


def record_token_source(args, identity: dict) -> None:
    """With --tokens_dir, the run's dataset and label columns are those the tokens were encoded from: taken from
    their record (so the card names what was used), and an explicit flag that says otherwise is refused."""
    source = identity.get("source") or {}
    for flag in ("dataset_name", "label_columns"):
        given, recorded = getattr(args, flag), source.get(flag)
        if given is not None and recorded is not None and given != recorded and portable_path(given) != recorded:
            raise ValueError(
                f"--{flag} {given} but --tokens_dir {args.tokens_dir} holds tokens of {flag}={recorded}: drop the flag "
                "(the tokens say what they are) or encode the tokens again."
            )
        setattr(args, flag, recorded if recorded is not None else given)
    if source.get("hflip_train"):
        args.tokens_hflip_train = True  # recorded in the card: the prior saw mirrored train images too


def class_names(tokens, num_classes: int) -> list[str] | None:
    """The class names of a token dataset's `label` ClassLabel, when it names exactly `num_classes` classes."""
    feature = tokens.features.get("label")
    names = getattr(feature, "names", None)
    return list(names) if names and len(names) == num_classes else None


def class_factors(args, names: list[str] | None) -> tuple[int, ...]:
    """`--class_tokens per_column`: the sizes of the label columns a combined label is made of (from its names)."""
    if args.class_tokens == "combined":
        return ()
    sizes = label_column_sizes(names or [])
    if len(sizes) < 2:
        raise ValueError(
            f"--class_tokens per_column needs a label combined from several columns (--label_columns A B), but the "
            f"labels of this run are {'unnamed' if not names else 'one column'}."
        )
    return sizes


def count_classes(tokens) -> int:
    """Classes of a token dataset's `label` column (its ClassLabel names, else max + 1); 0 without labels."""
    if "label" not in tokens.column_names:
        return 0
    feature = tokens.features["label"]
    return feature.num_classes if hasattr(feature, "num_classes") else int(max(tokens.with_format(None)["label"])) + 1


@dataclass
class Components:
    kind: AutoregressivePrior | DiscreteDiffusionPrior
    layout: TokenLayout
    vqvae: VQVAEModel
    prior: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    ema: EMAModel | None
    train_loader: torch.utils.data.DataLoader
    eval_loader: torch.utils.data.DataLoader


@torch.no_grad()
def evaluate_bits(args, components: Components, accelerator) -> float:
    """Held-out loss in bits per target token (for diffusion: of its training objective, with fixed noise)."""
    prior, kind = components.prior, components.kind
    prior.eval()
    generator = torch.Generator().manual_seed(args.seed)
    total_nats, total_tokens = 0.0, 0
    for batch in components.eval_loader:
        input_ids, labels = kind.inputs(batch, components.layout, 0.0, generator)
        loss = prior(input_ids=input_ids, labels=labels).loss.float()
        count = kind.num_targets(labels).float().to(loss.device)
        total_nats += float(accelerator.reduce(loss * count, reduction="sum"))
        total_tokens += int(accelerator.reduce(count, reduction="sum"))
    prior.train()
    return bits_per_token(total_nats / max(total_tokens, 1))


def save_samples(args, components: Components, prior: torch.nn.Module, path: Path) -> None:
    """A grid of `--num_validation_images` samples (classes cycled) from the pipeline `prior` would ship in."""
    was_training = prior.training
    pipeline = components.kind.pipeline(components.vqvae, prior.eval())
    pipeline.set_progress_bar_config(disable=True)
    count, num_classes = args.num_validation_images, components.layout.num_classes
    labels = torch.arange(count) % num_classes if num_classes else None
    samples = pipeline(
        count,
        class_labels=labels,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
        **components.kind.sampling_kwargs(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(samples.images * 2 - 1, columns=min(8, count)).save(path)
    prior.train(was_training)


def check_cheap_things_first(args) -> None:
    """What can fail in a second, checked before minutes of encoding or training: the output folder is writable,
    the checkpoint to resume exists, the token folder exists."""
    output_dir = Path(args.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=output_dir).close()
    except OSError as error:
        raise ValueError(f"--output_dir {output_dir} is not writable ({error.strerror}).") from None
    resolve_resume_checkpoint(output_dir, args.resume_from_checkpoint)
    if args.tokens_dir is not None and not Path(args.tokens_dir).is_dir():
        raise ValueError(f"--tokens_dir {args.tokens_dir} does not exist (make it with examples/encode_dataset.py).")


def train_order(args, train_tokens) -> dict:
    """The training loader's shuffling: uniform, or class-balanced with `--class_balance`."""
    if not args.class_balance:
        return {"shuffle": True, "generator": loader_generator(args)}
    if "label" not in train_tokens.column_names:
        raise ValueError("--class_balance needs a `label` column in the token dataset.")
    labels = train_tokens.with_format("torch")["label"]
    natural, balanced = class_shares(labels, 0.0), class_shares(labels, args.class_balance)
    largest = int(natural.argmax())
    logger.info(f"--class_balance {args.class_balance}: the largest class gets {balanced[largest]:.1%} of the draws "
                f"(its share of the data: {natural[largest]:.1%}).")  # fmt: skip
    # the generator too: without one, starting an iterator draws from the global RNG (see `loader_generator`)
    return {
        "sampler": ClassBalancedSampler(labels, args.class_balance, seed=args.seed),
        "generator": loader_generator(args),
    }


# the flags that fix a prior's shape: a continued run must name the same ones (or leave the recipe's)
SHAPE_FLAGS = {"n_layer": ("n_layer", "num_hidden_layers"), "n_head": ("n_head", "num_attention_heads"),
               "n_embd": ("n_embd", "hidden_size")}  # fmt: skip


def continued_model(args, kind, layout: TokenLayout, vqvae: VQVAEModel) -> torch.nn.Module:
    """The prior of the pipeline `--init_from`, checked against this run: the same tokenizer, token layout and shape
    flags (each difference named), so that a continued run is the same model trained further."""
    folder = Path(args.init_from)
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"--init_from {args.init_from} is not a saved pipeline folder (no model_index.json).")
    model = kind.load_model(folder)
    recorded = getattr(model.config, TOKENIZER_HASH_KEY, None)
    if recorded is not None and recorded != tokenizer_identity(vqvae)["weights_sha256"]:
        raise ValueError(
            f"--init_from {args.init_from} was trained on another tokenizer's codes than --vqvae_name_or_path "
            f"{args.vqvae_name_or_path} (weights hash {recorded} vs {tokenizer_identity(vqvae)['weights_sha256']})."
        )
    saved_layout = TokenLayout.from_config(model.config)
    if saved_layout != layout:
        raise ValueError(f"--init_from {args.init_from} has the token layout {saved_layout}, this run {layout}.")
    differences = []
    for flag, names in SHAPE_FLAGS.items():
        saved = next(getattr(model.config, name) for name in names if hasattr(model.config, name))
        if saved != getattr(args, flag):
            differences.append(f"--{flag} {getattr(args, flag)} (saved: {saved})")
    if differences:
        raise ValueError(
            f"--init_from {args.init_from} holds a prior of another shape: {', '.join(differences)}. Pass its values."
        )
    return model


def previous_legs(args) -> list[dict]:
    """The training legs of the pipeline `--init_from` (from its eval_results.json): one when it recorded none."""
    if args.init_from is None:
        return []
    results_file = Path(args.init_from) / "eval_results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    legs = results.get("training_legs")
    if legs is None:
        legs = [{"train_steps": results.get("train_steps"), "train_minutes": results.get("train_minutes")}]
    return legs


def build_components(args, accelerator: Accelerator) -> Components:
    """Tokenizer, token data, the prior of `--prior_type`, its optimiser and loaders, prepared for Accelerate."""
    kind = PRIOR_KINDS[args.prior_type](PriorConfig.from_namespace(args))
    vqvae = VQVAEModel.from_pretrained(args.vqvae_name_or_path).to(accelerator.device).eval()
    train_tokens, eval_tokens, num_classes = load_tokens(args, vqvae, accelerator)
    names = class_names(train_tokens, num_classes) if num_classes else None
    layout = kind.layout(vqvae, num_classes, class_factors(args, names))
    set_seed(args.seed)  # the same initial weights whatever the data loading before drew from the RNG
    prior = kind.build_model(layout) if args.init_from is None else continued_model(args, kind, layout, vqvae)
    setattr(prior.config, TOKENIZER_HASH_KEY, tokenizer_identity(vqvae)["weights_sha256"])  # checked at load
    if names:  # what each label means, read back by `pipeline.id2label`, the demo and the card
        prior.config.id2label = dict(enumerate(names))
        prior.config.label2id = {name: i for i, name in enumerate(names)}
    optimizer = torch.optim.AdamW(
        weight_decay_groups(prior, args.weight_decay), lr=args.learning_rate, betas=PRIOR_ADAM_BETAS
    )
    train_loader = torch.utils.data.DataLoader(
        train_tokens, batch_size=args.train_batch_size, drop_last=True, **train_order(args, train_tokens)
    )
    eval_loader = torch.utils.data.DataLoader(eval_tokens, batch_size=args.eval_batch_size)
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )  # fmt: skip
    prior, optimizer, train_loader, eval_loader, lr_scheduler = accelerator.prepare(
        prior, optimizer, train_loader, eval_loader, lr_scheduler
    )
    ema = None
    if args.use_ema:
        ema = EMAModel(accelerator.unwrap_model(prior).parameters(), decay=args.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    return Components(kind, layout, vqvae, prior, optimizer, lr_scheduler, ema, train_loader, eval_loader)


def main(args: argparse.Namespace) -> dict | None:
    accelerator = build_accelerator(args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    recover_interrupted_export(args.output_dir)  # before anything looks for checkpoints or cached tokens there
    if args.push_to_hub and accelerator.is_main_process:
        check_hub_access(args.hub_model_id)  # before training, not after it
    with hold_output_dir(accelerator.is_main_process, args.output_dir):  # one run per folder
        return run(args, accelerator)


def run(args: argparse.Namespace, accelerator: Accelerator) -> dict | None:
    check_cheap_things_first(args)
    components = build_components(args, accelerator)
    init_trackers(accelerator, "train_prior", args)
    remember_run_settings(args, accelerator.is_main_process)
    global_step = load_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint)

    start = time.monotonic()
    global_step = train(args, accelerator, components, global_step)
    train_minutes = (time.monotonic() - start) / 60
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(components.prior)
    if components.ema is not None:
        components.ema.copy_to(unwrapped.parameters())  # ship the averaged weights
    eval_bits = evaluate_bits(args, components, accelerator)
    results = {
        "prior_type": args.prior_type,
        "eval_bits_per_token": eval_bits,
        **components.kind.extra_results(eval_bits, components.layout),
        "train_steps": global_step,
        "train_minutes": train_minutes,
        "peak_rss_mib": peak_rss_mib(),  # this process's high-water mark (rank 0), training and evaluation included
    }
    legs = previous_legs(args) + [
        {"init_from": portable_path(args.init_from) if args.init_from else None, "train_steps": global_step,
         "train_minutes": train_minutes, "threads": torch.get_num_threads(), "processes": accelerator.num_processes}
    ]  # fmt: skip
    results["training_legs"] = legs
    results["total_train_minutes"] = sum(leg.get("train_minutes") or 0 for leg in legs)
    if accelerator.is_main_process:
        export_pipeline(args, components, unwrapped, results)
        if args.push_to_hub:
            push_or_explain(args.output_dir, args.hub_model_id)
        print(json.dumps(results, indent=2))
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return results if accelerator.is_main_process else None


def other_kinds_flags(kind) -> set[str]:
    """Flags that only other prior kinds read (e.g. `--corruption` for an autoregressive prior)."""
    own = set(type(kind).own_flags)
    return {flag for other in PRIOR_KINDS.values() for flag in other.own_flags} - own


def export_pipeline(args, components: Components, prior: torch.nn.Module, results: dict) -> None:
    """The trained pipeline, its held-out figures, a sample grid and the model card, exported into `--output_dir`
    in one atomic step (a kill never leaves a mixture of two runs there)."""
    card_metrics = {key: value for key, value in results.items() if key.startswith("eval_")}
    evaluator = f"examples/train_prior.py, held-out loss on the {args.eval_split} split"
    facts = model_facts(components.vqvae, components.layout, components.kind.scheduler)
    context = training_context(args.prior_type, "train_prior.py", args, facts, card_metrics, evaluator)
    for flag in other_kinds_flags(components.kind):  # the card lists only the flags this kind of prior reads
        context["hyperparameters"].pop(flag, None)
    context["command"] = card_command(context["hyperparameters"])
    context["training"] = {"legs": results["training_legs"], "total_train_minutes": results["total_train_minutes"]}
    context |= components.kind.card  # the kind's own template, name and tags

    def write(folder: Path) -> None:
        components.kind.pipeline(components.vqvae, prior.eval()).save_pretrained(folder)
        (folder / "eval_results.json").write_text(json.dumps(results, indent=2))
        save_samples(args, components, prior, folder / "samples.png")
        write_model_card(folder, context)

    export_atomically(args.output_dir, write)


def train(args, accelerator, components: Components, global_step: int) -> int:
    prior, optimizer, lr_scheduler, ema = (
        components.prior,
        components.optimizer,
        components.lr_scheduler,
        components.ema,
    )
    progress = tqdm(
        total=args.max_train_steps, initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    prior.train()
    start = time.monotonic()
    while global_step < args.max_train_steps and not out_of_time(accelerator, start, args.max_train_minutes):
        for batch in resumed_batches(
            accelerator, components.train_loader, global_step, args.gradient_accumulation_steps
        ):
            with accelerator.accumulate(prior):
                input_ids, labels = components.kind.inputs(batch, components.layout, args.class_dropout)
                loss = prior(input_ids=input_ids, labels=labels).loss
                mean_loss = backward_and_step(
                    accelerator, loss, prior, optimizer, lr_scheduler, args.max_grad_norm, global_step + 1
                )
            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(accelerator.unwrap_model(prior).parameters())
            global_step += 1
            progress.update(1)
            logs = {
                "loss": mean_loss,
                "bits_per_token": bits_per_token(mean_loss),
                "lr": lr_scheduler.get_last_lr()[0],
            }
            progress.set_postfix(bits=f"{logs['bits_per_token']:.3f}")
            accelerator.log(logs, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            if global_step % args.validation_steps == 0:
                eval_bits = evaluate_bits(args, components, accelerator)
                accelerator.log({"eval_bits_per_token": eval_bits}, step=global_step)
                if accelerator.is_main_process:
                    path = Path(args.output_dir) / "validation" / f"step-{global_step}.png"
                    save_samples(args, components, accelerator.unwrap_model(prior), path)
            if global_step >= args.max_train_steps or out_of_time(accelerator, start, args.max_train_minutes):
                break
    progress.close()
    return global_step


if __name__ == "__main__":
    main(parse_args())

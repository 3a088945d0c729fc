"""The training scripts' command lines, defined once: `examples/train_vqvae.py` and `examples/train_prior.py` parse
with these, and so do the benchmarks that build the scripts' models from a recipe (`benchmarks/accelerator_check.py`),
so a recipe means the same model everywhere and no default is copied."""

from __future__ import annotations

import argparse
import math

from ..data.registry import DATASETS
from ..models import VQVAEModel
from ..models.quantizers import QUANTIZERS
from .arguments import add_accelerate_arguments, add_optimization_arguments, check_training_arguments, recipe_parser
from .prior_kinds import PRIOR_KINDS


def fill_image_shape(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--resolution` / `--num_channels` not given: the named dataset's (the registry knows them); a folder or a Hub id
    must name them, since no default can know the user's images."""
    missing = [flag for flag in ("resolution", "num_channels") if getattr(args, flag) is None]
    if not missing:
        return
    folder = getattr(args, "train_data_dir", None)
    entry = DATASETS.get(args.dataset_name) if folder is None else None
    if entry is None:
        source = f"--train_data_dir {folder}" if folder else f"--dataset_name {args.dataset_name}"
        parser.error(f"{source} needs {' and '.join('--' + flag for flag in missing)} (the image size and channels to "
                     "train at, e.g. --resolution 32 --num_channels 3); only the named datasets "
                     f"({', '.join(sorted(DATASETS))}) have defaults")  # fmt: skip
    for flag in missing:
        setattr(args, flag, getattr(entry, flag))


def parse_tokenizer_arguments(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """examples/train_vqvae.py's arguments (a recipe is `@file`), checked; the check scripts parse recipes with it."""
    parser = recipe_parser(description)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default=None, help="`fashion_mnist`, `emoji` or a Hub dataset id.")
    data.add_argument(
        "--train_data_dir",
        default=None,
        help="Local image folder, or shard folder with --streaming (overrides --dataset_name).",
    )
    data.add_argument("--image_column", default="image")
    data.add_argument("--eval_split", default="test", help="Split for validation grids and the final metrics.")
    data.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="Image size to train at. Default: the named dataset's; needed for a folder or Hub id.",
    )
    data.add_argument("--num_channels", type=int, default=None, choices=(1, 3),
                      help="1 (grey) or 3 (RGB). Default: the named dataset's; needed for a folder or Hub id.")  # fmt: skip
    data.add_argument("--resize_mode", default="resize", choices=("resize", "pad"))
    data.add_argument("--max_train_samples", type=int, default=None, help="Truncate the training split (debugging).")
    data.add_argument("--max_eval_samples", type=int, default=None, help="Truncate the evaluation split.")
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    data.add_argument(
        "--streaming", action="store_true", help="Stream the dataset (no epochs; --max_*_samples are read lazily)."
    )
    data.add_argument(
        "--shuffle_buffer_size", type=int, default=1000, help="--streaming: rows drawn at random from this many."
    )

    model = parser.add_argument_group("model")
    model.add_argument("--block_out_channels", type=int, nargs="+", default=[32, 64, 64])
    model.add_argument("--layers_per_block", type=int, default=1)
    model.add_argument("--latent_channels", type=int, default=64)
    model.add_argument("--norm_num_groups", type=int, default=32)
    model.add_argument("--no_mid_block_attention", action="store_true", help="Drop the mid-block self-attention.")
    model.add_argument("--quantizer", default="vq", choices=tuple(QUANTIZERS),
                       help="vq: a learned codebook (the options below); fsq: finite scalar quantization.")  # fmt: skip
    model.add_argument("--fsq_levels", type=int, nargs="+", default=None,
                       help="FSQ values per code dimension (e.g. 8 8 8: 512 codes of dimension 3).")  # fmt: skip
    model.add_argument(
        "--num_vq_embeddings", type=int, default=None, help="Codebook size (default 256; FSQ: implied)."
    )
    model.add_argument("--vq_embed_dim", type=int, default=None, help="Code dimension (default: latent_channels).")
    model.add_argument("--codebook_update", default="ema", choices=("loss", "ema"))
    model.add_argument("--commitment_beta", type=float, default=0.25)
    model.add_argument("--ema_decay", type=float, default=0.99)
    model.add_argument("--kmeans_init", action="store_true")
    model.add_argument("--dead_code_threshold", type=float, default=0.0)
    model.add_argument("--use_cosine_codes", action="store_true")

    loss = parser.add_argument_group("loss")
    loss.add_argument("--reconstruction_loss", default="l1", choices=("l1", "l2"))
    loss.add_argument("--codebook_weight", type=float, default=1.0)
    loss.add_argument("--feature_matching_weight", type=float, default=0.0, help="Discriminator-feature perceptual.")
    loss.add_argument("--disc_weight", type=float, default=0.0, help="Adversarial weight (times the adaptive one).")
    loss.add_argument("--disc_start", type=int, default=0, help="Step from which the adversarial term is used.")
    loss.add_argument("--disc_base_channels", type=int, default=32)
    loss.add_argument("--disc_num_layers", type=int, default=2)
    loss.add_argument("--disc_learning_rate", type=float, default=None, help="Default: --learning_rate.")
    loss.add_argument("--lpips_model_path", default=None,
                      help="Perceptual loss network: a local TorchScript LPIPS file, or a metric classifier folder "
                           "(e.g. benchmarks/assets/emoji_shape_classifier); never downloaded.")  # fmt: skip
    loss.add_argument("--lpips_weight", type=float, default=0.0)

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="vqvae-model")
    train.add_argument("--max_train_minutes", type=float, default=None, help="Stop (and save) after this long.")
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.99)
    train.add_argument("--adam_weight_decay", type=float, default=0.0)
    add_optimization_arguments(train, max_train_steps=5000, learning_rate=1e-3)
    add_accelerate_arguments(train, checkpointing_steps=1000, validation_steps=500)
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
    if args.streaming and args.dataloader_num_workers:
        parser.error("--streaming reads in the main process (its position is saved with the checkpoint): "
                     "use --dataloader_num_workers 0")  # fmt: skip
    if args.shuffle_buffer_size < 0:
        parser.error("--shuffle_buffer_size must be >= 0")
    if bool(args.lpips_model_path) != (args.lpips_weight > 0):
        parser.error("--lpips_model_path and --lpips_weight > 0 go together (one without the other would be ignored)")
    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error(
            "pass the images to train on: --dataset_name (fashion_mnist, emoji, a Hub id) or --train_data_dir"
        )
    fill_image_shape(parser, args)
    if args.quantizer == "fsq":
        if not args.fsq_levels:
            parser.error("--quantizer fsq needs --fsq_levels (e.g. 8 8 8)")
        implied = (math.prod(args.fsq_levels), len(args.fsq_levels))
        given = (args.num_vq_embeddings, args.vq_embed_dim)
        if any(value is not None and value != want for value, want in zip(given, implied)):
            parser.error(f"--fsq_levels {' '.join(map(str, args.fsq_levels))} imply --num_vq_embeddings {implied[0]} "
                         f"and --vq_embed_dim {implied[1]}; got {given[0]} and {given[1]} (drop them)")  # fmt: skip
        args.num_vq_embeddings, args.vq_embed_dim = implied
        vq_only = {"--codebook_update loss": args.codebook_update != "ema", "--kmeans_init": args.kmeans_init,
                   "--dead_code_threshold": args.dead_code_threshold > 0, "--use_cosine_codes": args.use_cosine_codes,
                   "--commitment_beta": args.commitment_beta != 0.25, "--ema_decay": args.ema_decay != 0.99}  # fmt: skip
        if any(vq_only.values()):
            parser.error(f"{', '.join(k for k, v in vq_only.items() if v)} only apply to --quantizer vq (FSQ has no "
                         "learned codebook)")  # fmt: skip
    elif args.fsq_levels:
        parser.error("--fsq_levels is for --quantizer fsq")
    args.num_vq_embeddings = args.num_vq_embeddings or 256
    if args.resolution % 2 ** (len(args.block_out_channels) - 1):
        parser.error(f"--resolution {args.resolution} is not divisible by 2**(len(--block_out_channels) - 1)")
    return args


def build_tokenizer(args: argparse.Namespace) -> VQVAEModel:
    """The untrained tokenizer `parse_tokenizer_arguments` describes."""
    num_blocks = len(args.block_out_channels)
    return VQVAEModel(
        in_channels=args.num_channels,
        out_channels=args.num_channels,
        down_block_types=("DownEncoderBlock2D",) * num_blocks,
        up_block_types=("UpDecoderBlock2D",) * num_blocks,
        block_out_channels=tuple(args.block_out_channels),
        layers_per_block=args.layers_per_block,
        latent_channels=args.latent_channels,
        sample_size=args.resolution,
        num_vq_embeddings=args.num_vq_embeddings,
        norm_num_groups=args.norm_num_groups,
        vq_embed_dim=args.vq_embed_dim,
        mid_block_add_attention=not args.no_mid_block_attention,
        codebook_update=args.codebook_update,
        commitment_beta=args.commitment_beta,
        ema_decay=args.ema_decay,
        kmeans_init=args.kmeans_init,
        dead_code_threshold=args.dead_code_threshold,
        use_cosine_codes=args.use_cosine_codes,
        quantizer_type=args.quantizer,
        fsq_levels=args.fsq_levels,
    )


def parse_prior_arguments(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """examples/train_prior.py's arguments (a recipe is `@file`), checked."""
    parser = recipe_parser(description)
    parser.add_argument("--prior_type", default="ar", choices=sorted(PRIOR_KINDS))
    data = parser.add_argument_group("data")
    data.add_argument("--vqvae_name_or_path", required=True)
    data.add_argument("--tokens_dir", default=None, help="Token dataset from examples/encode_dataset.py.")
    data.add_argument("--dataset_name", default=None,
                      help="Image dataset or folder to encode when --tokens_dir is not given (default: the one the "
                           "tokenizer was trained on, as its card records); with --tokens_dir, the tokens' own.")  # fmt: skip
    data.add_argument("--eval_split", default="test")
    data.add_argument("--train_data_dir", dest="dataset_name",
                      help="A local image folder to encode (the same as --dataset_name FOLDER; the other scripts' name).")  # fmt: skip
    data.add_argument("--label_columns", nargs="+", default=None,
                      help="Class label column(s) when encoding here; several become one label per combination.")  # fmt: skip
    data.add_argument("--unconditional", action="store_true", help="Ignore class labels.")
    data.add_argument("--class_tokens", default="combined", choices=("combined", "per_column"),
                      help="A label over several --label_columns as one token over their combinations, or one token "
                           "per column (e.g. category, style): the prior shares what a category looks like across "
                           "styles.")  # fmt: skip
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument("--class_balance", type=float, default=0.0,
                      help="Draw examples with probability ~ count(class)^-x: 0 the data's mix, 1 classes equally.")  # fmt: skip
    model = parser.add_argument_group("model")
    model.add_argument("--n_layer", type=int, default=4)
    model.add_argument("--n_head", type=int, default=4)
    model.add_argument("--n_embd", type=int, default=128)
    model.add_argument("--dropout", type=float, default=0.1)
    model.add_argument("--class_dropout", type=float, default=0.1, help="Label -> null class rate, for CFG.")
    diffusion = parser.add_argument_group("discrete diffusion (--prior_type diffusion)")
    diffusion.add_argument("--corruption", default="absorbing", choices=("uniform", "absorbing", "mask_and_replace"))
    diffusion.add_argument("--objective", default="x0", choices=("original", "x0"),
                           help="original: g(x_b) -> x_a; x0: predict the clean grid from x_t.")  # fmt: skip
    diffusion.add_argument("--schedule", default="cosine", choices=("linear", "cosine"))
    diffusion.add_argument("--num_train_timesteps", type=int, default=100)
    diffusion.add_argument("--extra_corruption", type=float, default=0.1, help="x_a -> x_b rate (original).")
    diffusion.add_argument("--loss_on", default=None, choices=("corrupted", "all"),
                           help="x0 loss positions; default: all for uniform corruption, else corrupted.")  # fmt: skip
    diffusion.add_argument("--num_inference_steps", type=int, default=16, help="For validation samples.")
    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="prior-pipeline")
    train.add_argument("--init_from", default=None,
                       help="A saved pipeline folder of this --prior_type (a finished run or a shipped one): continue "
                            "training its prior (its weights; a fresh optimiser and schedule) as a new leg.")  # fmt: skip
    train.add_argument("--weight_decay", type=float, default=0.1)
    train.add_argument("--use_ema", action="store_true")
    train.add_argument("--ema_decay", type=float, default=0.999)
    train.add_argument("--num_validation_images", type=int, default=16)
    train.add_argument("--max_train_minutes", type=float, default=None, help="Stop (and save) after this long.")
    add_optimization_arguments(train, max_train_steps=3000, learning_rate=1e-3)
    add_accelerate_arguments(train, checkpointing_steps=1000, validation_steps=500)
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
    if not 0 <= args.class_dropout < 1:
        parser.error("--class_dropout must be in [0, 1)")
    if not 0 <= args.class_balance <= 1:
        parser.error("--class_balance must be in [0, 1]")
    if args.class_tokens == "per_column" and args.unconditional:
        parser.error("--class_tokens per_column needs class labels (drop --unconditional)")
    if args.class_balance and args.unconditional:
        parser.error("--class_balance needs class labels (drop --unconditional)")
    if args.max_train_minutes is not None and args.max_train_minutes <= 0:
        parser.error("--max_train_minutes must be > 0")
    if not 0 <= args.extra_corruption < 1:
        parser.error("--extra_corruption must be in [0, 1)")
    if args.num_train_timesteps < 1 or args.num_inference_steps < 1:
        parser.error("--num_train_timesteps and --num_inference_steps must be >= 1")
    if args.loss_on is None:
        args.loss_on = "all" if args.corruption == "uniform" else "corrupted"
    return args

"""Does AU-labelled augmentation help an AU detector? A small replica of the paper's Table 5 design.

    .venv/bin/python benchmarks/augment_au_detection.py [--work DIR] [--seeds 3] [--steps 1500]
    .venv/bin/python benchmarks/augment_au_detection.py --images DISFA/images --labels DISFA/labels.csv

A compact CNN (four strided conv blocks, ~70k parameters at 64 px, torch on the CPU) learns the occurrence of the
eight AUs of Table 5 (AU1, 2, 4, 6, 9, 12, 25, 26) under two training sets, with the same number of
optimisation steps and the same seeds:

- annotated: a few identities (varied bundled characters) showing only the EMFACS emotions;
- annotated + augmented: the same plus `talkface augment` data (many other identities, random
  sparse AU combinations from the default prior).

The test set has held-out identities and held-out combinations: AU combinations drawn from the
prior's co-occurrence and single-AU components whose set of active AUs appears in neither training
set. Reports per-AU and average F1 (threshold 0.5 on the sigmoid), mean and spread over seeds.

With `--images/--labels` (a folder and a CSV in the labels.csv layout: `image`, `identity` and the
`AU<n>_on` columns of the eight AUs), that set replaces the synthetic annotated one: its identities
are split into training and test subjects (`--test-fraction`), and the comparison is external
training subjects alone against them plus the augmented data, on the external test subjects.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_speed import machine  # noqa: E402

PAPER_AUS = ("AU1", "AU2", "AU4", "AU6", "AU9", "AU12", "AU25", "AU26")


def read_set(images: Path, labels: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str], list[frozenset]]:
    """Images `(N, 3, size, size)` float32 (standardised per image), labels `(N, 8)` float32, identities,
    active-AU sets."""
    from PIL import Image

    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in ("image", "identity", *(f"{au}_on" for au in PAPER_AUS)) if rows and c not in rows[0]]
    if not rows or missing:
        sys.exit(f"{labels}: no rows, or missing columns {missing}; use the labels.csv layout of talkface augment")
    pixels = np.empty((len(rows), 3, size, size), dtype=np.float32)
    for k, row in enumerate(rows):
        image = Image.open(images / row["image"]).convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        pixels[k] = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    # Each image standardised on its own: lighting and skin tone change brightness and contrast a lot.
    pixels -= pixels.mean(axis=(1, 2, 3), keepdims=True)
    pixels /= pixels.std(axis=(1, 2, 3), keepdims=True) + 0.05
    targets = np.array([[float(row[f"{au}_on"]) for au in PAPER_AUS] for row in rows], dtype=np.float32)
    every = [c for c in rows[0] if c.endswith("_on")]
    combos = [frozenset(c for c in every if row[c] == "1") for row in rows]
    return pixels, targets, [row["identity"] for row in rows], combos


def make_sets(work: Path, size: int, args) -> dict[str, Path]:
    """Render (or resume) the three synthetic sets; returns their folders."""
    from talking_faces.augment import AugmentOptions, AUPrior, CharacterSource, run_augment

    plans = {
        "annotated": (100, args.annotated_identities, args.annotated, AUPrior.emotions_only()),
        "augmented": (200, args.augmented_identities, args.augmented, AUPrior()),
        "test": (300, args.test_identities, args.test, AUPrior(components={"cooccurrence": 0.5, "single": 0.5})),
    }
    folders = {}
    for name, (seed, identities, count, prior) in plans.items():
        folder = work / name
        start = time.perf_counter()
        result = run_augment(folder, [CharacterSource(seed, k) for k in range(identities)],
                             AugmentOptions(count=count, size=size, seed=seed), prior=prior, workers=args.workers)
        print(f"# {name}: {count} images of {identities} identities in {folder} "
              f"({result.rendered} rendered now, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
        folders[name] = folder
    return folders


def build_model(size: int):
    """Four strided conv blocks (16, 32, 64, 64 channels), a linear layer on the last feature map, 8 logits."""
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    # The head keeps the layout of the last feature map (4 x 4 at 64 px): each AU has its own part of the face.
    cells = (-(-size // 16)) ** 2  # four stride-2 blocks: ceil(size / 16) squared
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 64), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(64 * cells, len(PAPER_AUS)))


def train(images: np.ndarray, targets: np.ndarray, seed: int, steps: int, batch: int):
    """The CNN after `steps` AdamW steps on random batches (random shifts and mirror flips)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    model = build_model(images.shape[-1])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    positives = targets.mean(axis=0).clip(0.02, 0.98)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy((1 - positives) / positives).float())  # balanced: 0.5 is the even point
    data, labels = torch.from_numpy(images), torch.from_numpy(targets)
    model.train()
    for _ in range(steps):
        index = torch.from_numpy(generator.integers(0, len(data), batch))
        x = data[index]
        if generator.random() < 0.5:  # the eight AUs are bilateral: a mirror image keeps the labels
            x = x.flip(3)
        dx, dy = generator.integers(-3, 4, 2)
        x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
        loss = loss_fn(model(x), labels[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model


def f1_scores(model, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-AU F1 `(8,)` at sigmoid 0.5; 0 where an AU has neither predicted nor true positives."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(images[i: i + 256])) for i in range(0, len(images), 256)])
    predicted = (logits > 0).numpy()
    truth = targets > 0.5
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_augment_au_detection",
                        help="where the synthetic sets are rendered (resumed when present)")
    parser.add_argument("--size", type=int, default=64, help="image size of the sets and the CNN input")
    parser.add_argument("--annotated-identities", type=int, default=4)
    parser.add_argument("--annotated", type=int, default=400)
    parser.add_argument("--augmented-identities", type=int, default=40)
    parser.add_argument("--augmented", type=int, default=2400)
    parser.add_argument("--test-identities", type=int, default=8)
    parser.add_argument("--test", type=int, default=1500, help="test images drawn before held-out filtering")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="render processes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--images", type=Path, help="external annotated images (e.g. DISFA frames)")
    parser.add_argument("--labels", type=Path, help="their labels, in the labels.csv layout")
    parser.add_argument("--test-fraction", type=float, default=0.34, help="share of external identities held out")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    folders = make_sets(args.work, args.size, args)
    augmented = read_set(folders["augmented"] / "images", folders["augmented"] / "labels.csv", args.size)
    if args.images is not None and args.labels is not None:
        external = read_set(args.images, args.labels, args.size)
        subjects = sorted(set(external[2]))
        held = set(np.random.default_rng(0).permutation(subjects)[: max(1, round(args.test_fraction * len(subjects)))])
        is_test = np.array([identity in held for identity in external[2]])
        annotated = (external[0][~is_test], external[1][~is_test])
        test_images, test_targets = external[0][is_test], external[1][is_test]
        description = f"external set {args.labels} ({len(subjects) - len(held)} training, {len(held)} test subjects)"
    else:
        annotated_set = read_set(folders["annotated"] / "images", folders["annotated"] / "labels.csv", args.size)
        annotated = annotated_set[:2]
        test = read_set(folders["test"] / "images", folders["test"] / "labels.csv", args.size)
        seen = set(annotated_set[3]) | set(augmented[3])
        keep = np.array([combo not in seen for combo in test[3]])
        test_images, test_targets = test[0][keep], test[1][keep]
        description = (f"synthetic: {len(annotated[0])} annotated images of {args.annotated_identities} identities "
                       f"(EMFACS emotions only); test: {int(keep.sum())} of {len(keep)} images whose AU combination "
                       f"is in no training set, {args.test_identities} held-out identities")
    conditions = {
        "annotated": annotated,
        "annotated + augmented": (np.concatenate([annotated[0], augmented[0]]), np.concatenate([annotated[1], augmented[1]])),
    }
    scores = {name: [] for name in conditions}
    for seed in range(args.seeds):
        for name, (images, targets) in conditions.items():
            start = time.perf_counter()
            model = train(images, targets, seed, args.steps, args.batch)
            scores[name].append(f1_scores(model, test_images, test_targets))
            print(f"# seed {seed} {name}: average F1 {scores[name][-1].mean():.3f} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr)

    print(f"# AU detection F1, compact CNN at {args.size}x{args.size}, {args.steps} steps of {args.batch}, "
          f"{args.seeds} seeds (mean ± std)\n# {description}; augmented: {len(augmented[0])} images of "
          f"{args.augmented_identities} identities\n# test positives per AU: "
          + ", ".join(f"{au} {int(n)}" for au, n in zip(PAPER_AUS, test_targets.sum(axis=0))) + f"\n# {machine()}\n")
    print("| training set | " + " | ".join(PAPER_AUS) + " | average |")
    print("|---|" + "---|" * (len(PAPER_AUS) + 1))
    for name, runs in scores.items():
        runs = np.stack(runs)
        cells = [f"{100 * runs[:, k].mean():.1f} ± {100 * runs[:, k].std():.1f}" for k in range(len(PAPER_AUS))]
        average = runs.mean(axis=1)
        print(f"| {name} | " + " | ".join(cells) + f" | **{100 * average.mean():.1f}** ± {100 * average.std():.1f} |")
    positives = test_targets.sum(axis=0)
    trivial = 2 * positives / (len(test_targets) + positives)  # F1 of predicting every AU present
    print("| (every AU predicted present) | " + " | ".join(f"{100 * t:.1f}" for t in trivial)
          + f" | {100 * trivial.mean():.1f} |")
    gain = np.stack(scores["annotated + augmented"]).mean(axis=0) - np.stack(scores["annotated"]).mean(axis=0)
    print("| difference | " + " | ".join(f"{100 * g:+.1f}" for g in gain) + f" | **{100 * gain.mean():+.1f}** |")
    per_seed = [statistics.mean(a) - statistics.mean(b) for a, b in zip(scores["annotated + augmented"], scores["annotated"])]
    print(f"\naverage-F1 gain per seed: {', '.join(f'{100 * g:+.1f}' for g in per_seed)}")


if __name__ == "__main__":
    main()

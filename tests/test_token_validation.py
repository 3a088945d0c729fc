"""`validate_token_dataset`: the whole token dataset checked once, every split, naming split, row and value."""

import datasets
import numpy as np
import pytest

from hf_vqgen.data import validate_token_dataset


NUM_CODES, NUM_TOKENS, NUM_CLASSES = 16, 4, 10


def _split(rows, labels=None, dtype="int16") -> datasets.Dataset:
    data, features = {"token_ids": rows}, {"token_ids": datasets.Sequence(datasets.Value(dtype))}
    if labels is not None:
        data["label"], features["label"] = (
            labels,
            datasets.ClassLabel(num_classes=NUM_CLASSES + 2),
        )  # 2 more than the prior has
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def _good_rows(count: int = 6) -> tuple[list[list[int]], list[int]]:
    return np.random.default_rng(0).integers(0, NUM_CODES, (count, NUM_TOKENS)).tolist(), list(range(count))


def _good(count: int = 6, labels: bool = True) -> datasets.Dataset:
    rows, row_labels = _good_rows(count)
    return _split(rows, row_labels if labels else None)


def _validate(dataset, num_classes=NUM_CLASSES):
    validate_token_dataset(dataset, num_codes=NUM_CODES, num_tokens=NUM_TOKENS, num_classes=num_classes)


def _with_row(row: int, ids=None, label=None) -> datasets.Dataset:
    rows, labels = _good_rows()
    rows[row] = rows[row] if ids is None else ids
    labels[row] = labels[row] if label is None else label
    return _split(rows, labels)


def test_good_token_datasets_pass():
    _validate(datasets.DatasetDict(train=_good(), test=_good(3)))
    _validate(_good())  # a single split
    _validate(datasets.DatasetDict(train=_good(labels=False)), num_classes=None)  # unconditional: no labels needed
    _validate(datasets.DatasetDict(train=_good(labels=False)), num_classes=0)


@pytest.mark.parametrize(
    "ids, match",
    [
        ([0, 1, -1, 3], r"split 'train', row 2, position 2: token id -1 is outside \[0, num_codes=16\)"),
        ([0, 1, 2, 16], r"split 'train', row 2, position 3: token id 16 is outside \[0, num_codes=16\)"),
        ([0, 1, 2], r"split 'train', row 2: 3 token ids, expected num_tokens=4 \(1 row\(s\) of the wrong length"),
        ([0, 1, 2, 3, 4], r"split 'train', row 2: 5 token ids, expected num_tokens=4"),
    ],
)
def test_bad_ids_and_ragged_rows_are_named(ids, match):
    with pytest.raises(ValueError, match=match):
        _validate(datasets.DatasetDict(train=_with_row(2, ids=ids), test=_good(3)))


def test_a_bad_id_only_in_the_test_split_is_found():
    with pytest.raises(ValueError, match=r"split 'test', row 4, position 0: token id 99"):
        _validate(datasets.DatasetDict(train=_good(), test=_with_row(4, ids=[99, 0, 0, 0])))


def test_the_first_offending_id_is_named_and_all_are_counted():
    rows, _ = _good_rows()
    rows[1], rows[3] = [0, 20, 0, 30], [-5, 0, 0, 0]
    with pytest.raises(ValueError, match=r"row 1, position 1: token id 20 .*\(3 such id\(s\) in 2 row\(s\)"):
        _validate(_split(rows, list(range(6))))


def test_row_numbers_follow_a_selected_dataset():
    dataset = _with_row(5, ids=[0, 0, 0, 16]).select([5, 0, 1])  # an indices mapping over the Arrow table
    with pytest.raises(ValueError, match="row 0, position 3: token id 16"):
        _validate(dataset)


@pytest.mark.parametrize("label, match", [(10, "label 10 is outside"), (-1, "label -1 is outside")])
def test_labels_outside_the_classes_are_named(label, match):
    with pytest.raises(ValueError, match=rf"split 'test', row 3: {match} \[0, num_classes=10\)"):
        _validate(datasets.DatasetDict(train=_good(), test=_with_row(3, label=label)))
    _validate(datasets.DatasetDict(test=_with_row(3, label=label)), num_classes=None)  # unconditional: not read


def test_missing_label_column_for_a_class_conditional_prior():
    with pytest.raises(ValueError, match="split 'test' has no `label` column, but num_classes=10"):
        _validate(datasets.DatasetDict(train=_good(), test=_good(labels=False)))


def test_missing_or_non_integer_token_column():
    with pytest.raises(ValueError, match="no `token_ids` column"):
        _validate(datasets.Dataset.from_dict({"ids": [[0, 1, 2, 3]]}))
    with pytest.raises(ValueError, match="lists of integers, got list<item: float"):
        _validate(_split([[0.0, 1.0, 2.0, 3.0]], [0], dtype="float32"))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_codes": 0}, "num_codes"), ({"num_tokens": -1}, "num_tokens"), ({"num_classes": -2}, "num_classes")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_token_dataset(_good(), **{"num_codes": NUM_CODES, "num_tokens": NUM_TOKENS, **kwargs})

import math

import numpy as np
import pytest

from talking_faces.eval.metrics import (
    as_frames, condition_diversity, fdd_term, lip_errors, mean_distance, sample_diversity, truncate,
    upper_face_dynamics, velocity_lip_errors, vertex_errors,
)
from talking_faces.eval.regions import Regions
from talking_faces.eval.scoring import MethodScores, pool, score_animations


def frames(*rows):
    """(T, V, 3) from nested lists."""
    return np.asarray(rows, dtype=np.float64)


def test_lip_errors_are_squared_and_max_over_lip_vertices():
    gt = np.zeros((2, 3, 3))
    pred = frames(
        [[1, 2, 2], [9, 9, 9], [0, 0, 1]],  # lip vertex 0: |d|^2 = 9 (|d| = 3); vertex 1 is not a lip vertex
        [[0, 0, 0], [9, 9, 9], [0, 2, 0]],  # lip vertex 2: 4
    )
    np.testing.assert_array_equal(lip_errors(pred, gt, np.array([0, 2])), [9.0, 4.0])


def test_max_then_mean_differs_from_mean_then_max():
    gt = np.zeros((2, 2, 3))
    pred = frames([[2, 0, 0], [0, 0, 0]], [[0, 0, 0], [2, 0, 0]])
    per_frame = lip_errors(pred, gt, np.array([0, 1]))
    assert per_frame.mean() == 4.0  # max per frame (4, 4), then mean
    # the other order would give max(mean over frames per vertex) = 2
    assert np.einsum("tvc,tvc->tv", pred, pred).mean(axis=0).max() == 2.0


def test_velocity_lip_errors_use_frame_differences():
    gt = frames([[0, 0, 0]], [[1, 0, 0]], [[1, 0, 0]])
    pred = frames([[5, 0, 0]], [[5, 0, 0]], [[8, 0, 0]])  # a constant offset would not count
    # dG = (1, 0), dP = (0, 3) along x: squared errors 1 and 9
    np.testing.assert_array_equal(velocity_lip_errors(pred, gt, np.array([0])), [1.0, 9.0])
    offset = gt + 7.0
    np.testing.assert_array_equal(velocity_lip_errors(offset, gt, np.array([0])), [0.0, 0.0])


def test_fdd_is_signed_population_std_of_squared_displacement():
    template = np.zeros((2, 3))
    gt = frames([[0, 0, 0], [0, 0, 0]], [[2, 0, 0], [0, 0, 0]])  # vertex 0: d = (0, 4), std (ddof 0) = 2
    still = frames([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]])
    upper = np.array([0, 1])
    assert upper_face_dynamics(gt, template, upper) == 1.0  # mean over vertices of (2, 0)
    assert fdd_term(still, gt, template, upper) == 1.0  # GT moves more: positive
    wild = frames([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 3, 0]])  # vertex 1: d = (0, 9), std 4.5
    assert fdd_term(wild, gt, template, upper) == 1.0 - 2.25  # prediction moves more: negative


def test_truncation_cuts_prediction_to_ground_truth():
    gt = np.zeros((2, 1, 3))
    pred = frames([[1, 0, 0]], [[1, 0, 0]], [[100, 0, 0]])  # the extra frame must be ignored
    p, g = truncate(pred, gt)
    assert p.shape[0] == 2 and g.shape[0] == 2
    np.testing.assert_array_equal(lip_errors(p, g, np.array([0])), [1.0, 1.0])
    short = pred[:1]
    p, g = truncate(short, gt)
    assert p.shape[0] == g.shape[0] == 1


def test_vertex_errors_and_mean_distance_are_not_squared():
    gt = np.zeros((1, 2, 3))
    pred = frames([[3, 4, 0], [0, 0, 1]])
    np.testing.assert_array_equal(vertex_errors(pred, gt), [3.0])  # mean of 5 and 1
    assert mean_distance(pred, gt) == 3.0


def test_diversity_is_mean_pairwise_distance():
    base = np.zeros((2, 2, 3))
    shifted = [base + np.array([x, 0, 0]) for x in (0.0, 1.0, 3.0)]
    assert condition_diversity(shifted) == pytest.approx((1 + 3 + 2) / 3)
    assert sample_diversity(shifted) == condition_diversity(shifted)
    assert condition_diversity(shifted[:1]) is None


def test_as_frames_accepts_both_layouts():
    flat = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(as_frames(flat), flat.reshape(2, 2, 3))
    assert as_frames(flat).dtype == np.float64
    with pytest.raises(ValueError):
        as_frames(flat, num_vertices=3)


def test_pooling_weights_lve_by_frames_and_fdd_by_sequence():
    regions = Regions(np.array([0]), np.array([0]), "test", "lve.txt/fdd.txt", (1, 1))
    template = np.zeros((1, 3))
    gt_long, gt_short = np.zeros((3, 1, 3)), np.zeros((1, 1, 3))
    long = score_animations([gt_long + 1.0], gt_long, template, regions)  # per-frame LVE 3 (1+1+1) x 3 frames
    short = score_animations([gt_short + 3.0], gt_short, template, regions)  # 27 x 1 frame
    long.fdd, short.fdd = np.array([1.0]), np.array([5.0])
    short.diversity = 0.5
    row = pool([long, short])
    assert row["LVE"] == (3 * 3 + 27) / 4  # frame-weighted
    assert row["FDD"] == 3.0  # unweighted over sequences
    assert row["diversity"] == 0.5 and row["sequences"] == 2 and row["frames"] == 4
    assert row["V-LVE"] == 0.0  # constant offsets have no velocity error
    empty = pool([MethodScores(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), math.nan)])
    assert empty["LVE"] is None and empty["diversity"] is None

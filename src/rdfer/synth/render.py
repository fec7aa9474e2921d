"""Rendering: a `ClipPlan` drawn frame by frame (OpenCV, anti-aliased, drawn at twice the
output size and downsampled).
"""

from __future__ import annotations

import cv2
import numpy as np

from rdfer.synth.faces import A, Identity
from rdfer.synth.plan import ClipPlan


_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_AA = cv2.LINE_AA


class _Canvas:
    """A square BGR image addressed in canvas units (centre (0, 0), side 1)."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.n = image.shape[0]

    def fx(self, points) -> np.ndarray:
        """(N, 2) canvas units -> int32 fixed-point pixels for cv2 with shift=_SHIFT."""
        p = (np.asarray(points, np.float64) + 0.5) * (self.n * (1 << _SHIFT)) + 0.5
        return p.astype(np.int32).reshape(-1, 1, 2)

    def length(self, v: float) -> int:
        return max(1, int(round(v * self.n)))

    def poly(self, points, colour):
        cv2.fillPoly(self.image, [self.fx(points)], colour, _AA, _SHIFT)

    def line(self, points, colour, width):
        cv2.polylines(self.image, [self.fx(points)], False, colour, self.length(width), _AA, _SHIFT)

    def ellipse(self, centre, axes, colour, angle=0.0, start=0, end=360, thickness=-1):
        scale = self.n * (1 << _SHIFT)
        c = (int((centre[0] + 0.5) * scale + 0.5), int((centre[1] + 0.5) * scale + 0.5))
        ax = (max(1, int(axes[0] * scale + 0.5)), max(1, int(axes[1] * scale + 0.5)))
        if thickness > 0:
            thickness = self.length(thickness)
        cv2.ellipse(self.image, c, ax, angle, start, end, colour, thickness, _AA, _SHIFT)


_BEZIER_BASIS: dict = {}


def _bezier(p0, c, p1, n: int = 12) -> np.ndarray:
    """Quadratic Bezier through p0 and p1 with control c, (n, 2)."""
    if n not in _BEZIER_BASIS:  # (n, 3) Bernstein weights, cached: drawing is per frame
        t = np.linspace(0, 1, n)[:, None]
        _BEZIER_BASIS[n] = np.concatenate([(1 - t) ** 2, 2 * (1 - t) * t, t ** 2], axis=1)
    return _BEZIER_BASIS[n] @ np.array([p0, c, p1], np.float64)


def _curve_through(p0, mid_y: float, p1, n: int = 12) -> np.ndarray:
    """Quadratic curve from p0 to p1 whose middle point is at height mid_y."""
    c = ((p0[0] + p1[0]) / 2, 2 * mid_y - (p0[1] + p1[1]) / 2)
    return _bezier(p0, c, p1, n)


def _shade(colour, k: float) -> tuple:
    """Colour darkened by share k in [0, 1]."""
    return tuple(float(v) * (1 - k) for v in colour)


def _background(ident: Identity, n: int) -> np.ndarray:
    rng = np.random.default_rng(ident.background)
    base = rng.uniform(40, 200, 3)
    ramp = np.linspace(-1, 1, n)[None, :, None] * rng.uniform(-30, 30, 3)
    image = np.broadcast_to(base + ramp, (n, n, 3)).astype(np.uint8).copy()
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(float(v) for v in rng.uniform(20, 235, 3))
        x, y = rng.integers(0, n, 2)
        w, h = rng.integers(n // 8, n // 2, 2)
        if rng.uniform() < 0.5:
            cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1, _AA)
        else:
            cv2.ellipse(image, (int(x), int(y)), (int(w // 2), int(h // 2)), 0, 0, 360, colour, -1, _AA)
    return cv2.GaussianBlur(image, (0, 0), n / 40)


_CIRCLE = np.stack([np.sin(np.linspace(0, 2 * np.pi, 48, endpoint=False)),
                    np.cos(np.linspace(0, 2 * np.pi, 48, endpoint=False))])  # (2, 48)


def _draw_head(cv: _Canvas, ident: Identity, act: np.ndarray, yaw: float):
    a, b = ident.face_a, ident.face_b
    jaw = max(0.0, float(act[A["jaw_drop"]]))
    skin = ident.skin
    # Hair behind the head (long style) and ears.
    if ident.hair_style == 1:
        cv.ellipse((0, 0.02), (a * 1.22, b * 1.12), ident.hair)
    ear_y = ident.eye_y + 0.05
    for side in (-1, 1):
        cv.ellipse((side * a * 0.98 - 0.02 * yaw, ear_y), (0.035, 0.06), _shade(skin, 0.12))
    # Face outline: an ellipse whose lower half narrows towards the chin; the
    # chin drops with the jaw.
    x, y = a * _CIRCLE[0], -b * _CIRCLE[1]
    lower = y > 0
    x[lower] *= 1 - ident.jaw_taper * (y[lower] / b) ** 2
    y[lower] *= 1 + 0.12 * jaw
    cv.poly(np.stack([x, y + 0.02], 1), skin)
    # Hair on top.
    if ident.hair_style != 2:
        cv.ellipse((0, 0.02 - b * 0.55), (a * 1.04, b * 0.5), ident.hair, start=180, end=360)
        cv.ellipse((0, 0.02 - b * 0.5), (a * 1.02, b * 0.22), ident.hair, start=180, end=360)
    else:
        cv.ellipse((0, 0.02 - b * 0.6), (a * 0.98, b * 0.42), _shade(ident.hair, -0.2),
                   start=180, end=360)


def _draw_eye(cv: _Canvas, ident: Identity, side: int, act: np.ndarray, gaze, shift: float):
    eo = float(act[A["eye_open"]])
    cx, cy = side * ident.eye_dx + shift, ident.eye_y
    w = ident.eye_w
    up = ident.eye_h * min(max(1 + 0.9 * eo, 0.05), 2.4)
    low = ident.eye_h * 0.7 * min(max(1 + 0.6 * eo, 0.15), 1.8)
    inner, outer = (cx - side * w, cy), (cx + side * w, cy - 0.004)
    upper_lid = _curve_through(inner, cy - up, outer)
    lower_lid = _curve_through(outer, cy + low, inner)
    # Sclera and iris, then skin drawn back over whatever lies outside the
    # lids, so wide-open eyes show white around the iris and squints hide it.
    cv.poly(np.concatenate([upper_lid, lower_lid]), (235, 238, 240))
    iris_c = (cx + gaze[0] * w * 0.35, cy + gaze[1] * ident.eye_h * 0.25)
    r = ident.eye_h * 1.1
    cv.ellipse(iris_c, (r, r), ident.iris)
    cv.ellipse(iris_c, (r * 0.45, r * 0.45), (15, 15, 15))
    reach = r + ident.eye_h * 0.25 + 0.01  # beyond the iris's furthest point
    cv.poly(np.concatenate([upper_lid, [(outer[0], cy - reach), (inner[0], cy - reach)]]), ident.skin)
    cv.poly(np.concatenate([lower_lid, [(inner[0], cy + reach), (outer[0], cy + reach)]]), ident.skin)
    lid = _shade(ident.skin, 0.55)
    cv.line(upper_lid, lid, 0.006)
    cv.line(lower_lid, _shade(ident.skin, 0.3), 0.0025)


_BROW_TAPER = np.linspace(1.2, 0.5, 10)[:, None]  # thick inner end, thin outer end


def _draw_brows(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    raise_, lower, inner = (float(act[A[k]]) for k in ("brow_raise", "brow_lower", "brow_inner"))
    base = ident.eye_y - ident.brow_gap - 0.045 * raise_ + 0.022 * lower
    for side in (-1, 1):
        xi = side * (ident.eye_dx - ident.eye_w * 0.95 - 0.012 * max(lower, 0)) + shift
        xo = side * (ident.eye_dx + ident.eye_w * 1.3) + shift
        yi = base + 0.02 * lower - 0.045 * inner
        yo = base + 0.004 - 0.004 * inner
        mid_y = (yi + yo) / 2 - ident.brow_arch - 0.012 * max(inner, 0)
        centre = _curve_through((xi, yi), mid_y, (xo, yo), 10)
        half = ident.brow_t / 2 * _BROW_TAPER
        outline = np.concatenate([centre - [0, 1] * half, (centre + [0, 1] * half)[::-1]])
        cv.poly(outline, ident.hair)
    # Forehead lines when brows rise, frown lines between lowered brows.
    crease = max(raise_, 0.5 * inner, 0)
    if crease > 0.15:
        colour = _shade(ident.skin, 0.35 * min(crease, 1.2))
        for k in range(2):
            y = base - 0.045 - 0.025 * k
            cv.line(_curve_through((shift - 0.09, y), y - 0.01, (shift + 0.09, y)), colour, 0.004)
    if lower > 0.2:
        colour = _shade(ident.skin, 0.4 * min(lower, 1.2))
        for side in (-1, 1):
            x = shift + side * 0.015
            cv.line([(x, base + 0.005), (x + side * 0.004, base + 0.04)], colour, 0.004)


def _draw_nose(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    wrinkle = max(0.0, float(act[A["nose_wrinkle"]]))
    tip_y = ident.eye_y + ident.nose_len - 0.01 * wrinkle
    w = ident.nose_w * (1 + 0.25 * wrinkle)
    dark = _shade(ident.skin, 0.3)
    cv.line([(shift + 0.012, ident.eye_y + 0.02), (shift + w * 0.6, tip_y - 0.01)], dark, 0.004)
    for side in (-1, 1):
        cv.ellipse((shift + side * w * 0.45, tip_y), (w * 0.28, w * 0.14), _shade(ident.skin, 0.5))
    cv.line(_curve_through((shift - w, tip_y - 0.01), tip_y + 0.012, (shift + w, tip_y - 0.01)),
            dark, 0.004)
    if wrinkle > 0.1:  # wrinkles across the bridge
        colour = _shade(ident.skin, 0.45 * min(wrinkle, 1.2))
        for k in range(3):
            y = ident.eye_y + 0.03 + 0.018 * k
            cv.line([(shift - 0.022, y + 0.006), (shift, y), (shift + 0.022, y + 0.006)], colour, 0.0035)


def _draw_mouth(cv: _Canvas, ident: Identity, act: np.ndarray, shift: float):
    corner, jaw, press, stretch, wrinkle = (
        float(act[A[k]]) for k in ("mouth_corner", "jaw_drop", "lip_press", "lip_stretch", "nose_wrinkle")
    )
    jaw, press, wrinkle = max(jaw, 0.0), max(press, 0.0), max(wrinkle, 0.0)
    tip_y = ident.eye_y + ident.nose_len
    my = tip_y + ident.mouth_gap + 0.02 * jaw
    hw = ident.mouth_w * (1 + 0.25 * stretch + 0.12 * max(corner, 0) - 0.2 * press
                          - 0.2 * jaw * (1 - max(stretch, 0)))
    opening = 0.09 * jaw
    corner_y = my - 0.05 * corner + 0.01 * jaw
    left, right = (shift - hw, corner_y), (shift + hw, corner_y)
    upper_in = my - 0.25 * opening - 0.02 * wrinkle
    lower_in = my + 0.75 * opening
    t_up = ident.lip_t * (1 - 0.65 * press)
    t_low = ident.lip_t * 1.3 * (1 - 0.65 * press)
    c_upper_in = _curve_through(left, upper_in, right)
    c_lower_in = _curve_through(left, lower_in, right)
    c_upper_out = _curve_through(left, upper_in - t_up, right)
    c_lower_out = _curve_through(left, lower_in + t_low, right)
    # Nasolabial folds deepen with a smile or a sneer.
    fold = max(corner, 0) * 0.8 + wrinkle * 0.6
    if fold > 0.1:
        colour = _shade(ident.skin, 0.35 * min(fold, 1.2))
        for side in (-1, 1):
            top = (shift + side * (ident.nose_w + 0.012), tip_y - 0.005)
            end = (shift + side * (hw + 0.012), corner_y + 0.012)
            ctrl = (shift + side * (hw + 0.03), (top[1] + end[1]) / 2)
            cv.line(_bezier(top, ctrl, end, 8), colour, 0.004)
    if upper_in - lower_in < -0.004:  # open: cavity and upper teeth
        cv.poly(np.concatenate([c_upper_in, c_lower_in[::-1]]), (35, 30, 70))
        teeth = c_upper_in + [0, min(0.4 * (lower_in - upper_in), 0.018)]
        cv.poly(np.concatenate([c_upper_in, teeth[::-1]]), (215, 225, 230))
    cv.poly(np.concatenate([c_upper_out, c_upper_in[::-1]]), ident.lip)
    cv.poly(np.concatenate([c_lower_in, c_lower_out[::-1]]), _shade(ident.lip, -0.08))
    cv.line(c_upper_in, _shade(ident.lip, 0.5), 0.004)


def _draw_occluder(cv: _Canvas, occ: dict, t: int):
    start, stop = occ["frames"]
    if not start <= t < stop:
        return
    k = (t - start) / max(stop - start - 1, 1)
    centre = (1 - k) * np.array(occ["from"]) + k * np.array(occ["to"])
    s, colour = occ["size"], occ["colour"]
    if occ["kind"] == "bar":
        rect = cv2.boxPoints(((float(centre[0]), float(centre[1])), (s * 0.6, 1.2), occ["angle"]))
        cv.poly(rect, colour)
        return
    # A hand: palm and four fingers pointing away from the wrist.
    angle = np.deg2rad(occ["angle"])
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    cv.ellipse(centre, (s * 0.75, s * 0.6), colour, angle=occ["angle"])
    for j in range(4):
        base = centre + direction * s * 0.65 + normal * s * (j - 1.5) * 0.33
        cv.ellipse(base + direction * s * 0.4, (s * 0.45, s * 0.12), _shade(colour, 0.05),
                   angle=occ["angle"])
    cv.line([centre - direction * s * 0.6, centre - direction * s * 1.6], colour, s * 0.9)


def render_frames(plan: ClipPlan, size: int = 112) -> np.ndarray:
    """Draw a planned clip.

    Args:
        plan: from `plan_clip`.
        size: output side in pixels (frames are drawn at twice this and downsampled).

    Returns:
        uint8 array (T, size, size, 3), BGR (OpenCV order, as written to JPEG).
    """
    n = 2 * int(size)
    background = _background(plan.identity, n)
    ident = plan.identity
    frames = np.empty((plan.num_frames, size, size, 3), np.uint8)
    # Pixel grid in [-1, 1] for the lighting gradient.
    grid = np.linspace(-1, 1, size, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    # A few noise fields, cut at random offsets per frame (cheaper than fresh noise).
    noise_rng = np.random.default_rng(ident.background + 1)
    noise = noise_rng.standard_normal((3, size + 16, size + 16, 3), dtype=np.float32)
    noise *= plan.noise_sigma
    offsets = noise_rng.integers(0, [3, 17, 17], (plan.num_frames, 3))
    for t in range(plan.num_frames):
        cv = _Canvas(background.copy())
        act = plan.actions[t]
        dx, dy, roll, scale, yaw = (float(v) for v in plan.pose[t])
        shift = 0.035 * yaw  # features slide sideways as the head turns
        _draw_head(cv, ident, act, yaw)
        for side in (-1, 1):
            _draw_eye(cv, ident, side, act, plan.gaze[t], shift)
        _draw_brows(cv, ident, act, shift)
        _draw_nose(cv, ident, act, shift)
        _draw_mouth(cv, ident, act, shift)
        if plan.occluder is not None:
            _draw_occluder(cv, plan.occluder, t)
        # Downsample the 2x drawing (anti-aliasing), then move the head with
        # one similarity transform about the image centre.
        small = cv2.resize(cv.image, (size, size), interpolation=cv2.INTER_AREA)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), roll, scale)
        m[:, 2] += (dx * size, dy * size)
        small = cv2.warpAffine(small, m, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        # Lighting: gain x colour cast x directional gradient, plus sensor noise.
        gain, amp, angle = (float(v) for v in plan.light[t])
        shade = gain * (1 + amp * (np.cos(angle) * gx + np.sin(angle) * gy))  # (H, W)
        shade3 = cv2.merge([shade * np.float32(c) for c in plan.colour])  # (H, W, 3)
        lit = cv2.multiply(small, shade3, dtype=cv2.CV_32F)
        k, oy, ox = offsets[t]
        lit = cv2.add(lit, noise[k, oy:oy + size, ox:ox + size])
        frames[t] = cv2.convertScaleAbs(lit)  # saturates to [0, 255]
    return frames

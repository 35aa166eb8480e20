"""Flow from a Vector pass: the convention, warping, and flow through a distorting lens."""
import numpy as np

from synthfarm.addon.core.flow import flow_from_vector, flow_through_view, warp
from synthfarm.addon.core.lens import Lens, render_view


def _frames(shift=(5, -3)):
    h, w = 40, 60
    a = np.zeros((h, w), np.uint16)
    b = np.zeros((h, w), np.uint16)
    a[10:20, 10:25] = 7
    b[10 + shift[1]:20 + shift[1], 10 + shift[0]:25 + shift[0]] = 7
    return a, b


def test_vector_pass_to_forward_and_backward_flow_and_warp_back():
    dx, dy = 5, -3  # the square moves right and up (y down in images)
    a, b = _frames((dx, dy))
    # Blender's pass, y up: X,Y = previous - current, Z,W = current - next
    z = np.where(a > 0, -dx, 0).astype(np.float32)
    wch = np.where(a > 0, dy, 0).astype(np.float32)  # y up: the move is -dy, current - next is +dy
    x = np.where(b > 0, -dx, 0).astype(np.float32)
    y = np.where(b > 0, dy, 0).astype(np.float32)  # y up: previous - current = -(move up) = dy
    forward, _ = flow_from_vector(x, y, z, wch)
    assert np.allclose(forward[a > 0], [dx, dy])
    warped = warp(b, forward, nearest=True)
    assert (warped[a > 0] == 7).all()
    _, backward = flow_from_vector(x, y, z, wch)
    assert np.allclose(backward[b > 0], [-dx, -dy])
    assert (warp(a, backward, nearest=True)[b > 0] == 7).all()


def test_flow_through_a_distorting_lens_lands_where_the_lens_projects_the_moved_point():
    K = np.array([[120.0, 0, 80], [0, 120.0, 60], [0, 0, 1]])
    lens = Lens(K, (160, 120), "brown_conrady", (-0.25, 0.05, 0.0, 0.0, 0.0))
    view = render_view(lens)
    Wr, Hr = view.source.size
    motion = np.array([0.04, 0.02, 0.0])  # a plane at z = 2 moves by this in camera space
    flow_render = np.zeros((Hr, Wr, 2), np.float32)
    flow_render[...] = motion[:2] / 2.0 * view.source.K[0, 0]
    out = flow_through_view(view, flow_render)
    r, c = 30, 40
    xy_d = lens.from_pixels(np.array([[c + 0.5, r + 0.5]]))
    xy, _ = lens.undistort(xy_d)
    point = np.r_[xy[0] * 2.0, 2.0]
    expected, _ = lens.project((point + motion)[None])
    got = np.array([c + 0.5, r + 0.5]) + out[r, c]
    assert np.abs(got - expected[0]).max() < 0.6  # within the render pixel the motion was read from

import numpy as np
import pytest

from cortexsim.analysis.alignment import layer_angles, summarize_angles


def test_layer_angles_descent_direction_and_shapes():
    g = [np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])]
    angles = layer_angles([-g[0], g[1]], g)
    np.testing.assert_allclose(angles, [0.0, 180.0], atol=1e-6)
    with pytest.raises(ValueError, match="layer 0"):
        layer_angles([np.zeros(3)], [np.zeros(2)])
    stats = summarize_angles(np.array([[1.0, 2.0], [3.0, np.nan]]))
    assert stats["layer_0"]["mean_deg"] == 2.0 and stats["layer_1"]["n"] == 1

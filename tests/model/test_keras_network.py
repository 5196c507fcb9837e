"""The network's sparse first layer against the same product done densely.

TensorFlow is imported in the test, not at collection: importing it costs every pytest process
(each pytest-xdist worker collects every module) several seconds of CPU. For the same reason the
test is `slow`: the quick run never imports TensorFlow (`make test` runs it)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_sparse_layer_matches_a_dense_product_and_its_kernel_gradient() -> None:
    tf = pytest.importorskip("tensorflow")
    from model.keras_network import SparseDense

    rng = np.random.default_rng(0)
    # Rows in shuffled order, repeated columns across rows, unused columns, an empty row.
    dense_inputs = (rng.random((6, 40)) < 0.15) * rng.random((6, 40))
    dense_inputs[3] = 0.0
    dense_inputs = dense_inputs.astype(np.float32)
    rows, columns = np.nonzero(dense_inputs)
    order = rng.permutation(len(rows))
    inputs = tf.SparseTensor(
        np.stack([rows[order], columns[order]], axis=1).astype(np.int64),
        dense_inputs[rows[order], columns[order]],
        dense_inputs.shape,
    )
    layer = SparseDense(5)
    layer.build((None, 40))
    upstream = tf.constant(rng.standard_normal((6, 5)), dtype=tf.float32)

    with tf.GradientTape() as tape:
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * upstream)
    gradient = tf.convert_to_tensor(tape.gradient(loss, layer.kernel.value))

    kernel = layer.kernel.numpy()
    np.testing.assert_allclose(outputs.numpy(), dense_inputs @ kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        gradient.numpy(), dense_inputs.T @ upstream.numpy(), rtol=1e-5, atol=1e-6
    )

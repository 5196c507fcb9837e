"""The Keras network trained by model.train (imports TensorFlow: training worker only).

Sparse TF-IDF rows feed a first layer that only reads and updates the kernel rows of the
features present in a batch, so one step costs (features in the batch x units), not
(vocabulary x units): tens of thousands of n-grams train in seconds on two cores.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class SparseDense(keras.layers.Layer):
    """Dense layer over a sparse input whose kernel gradient stays sparse (IndexedSlices)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs: tf.SparseTensor) -> tf.Tensor:
        rows, columns = inputs.indices[:, 0], inputs.indices[:, 1]
        # Gather the used kernel rows once; the product then runs over batch-local columns.
        used, local_columns = tf.unique(columns)
        local_inputs = tf.SparseTensor(
            tf.stack([rows, tf.cast(local_columns, tf.int64)], axis=1),
            inputs.values,
            tf.stack([inputs.dense_shape[0], tf.cast(tf.size(used), tf.int64)]),
        )
        used_kernel = tf.gather(self.kernel.value, used)
        return tf.sparse.sparse_dense_matmul(local_inputs, used_kernel) + self.bias

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int]:
        return (input_shape[0], self.units)


class LazyAdam(keras.optimizers.Adam):
    """Adam that, for sparse gradients, updates only the rows present (the moments of others wait).

    Plain Adam would rewrite the whole first-layer kernel and both moments at every step.
    """

    def update_step(
        self, gradient: tf.Tensor, variable: tf.Variable, learning_rate: float | tf.Tensor
    ) -> None:
        if not isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        rows, positions = tf.unique(gradient.indices)
        row_gradient = tf.math.unsorted_segment_sum(gradient.values, positions, tf.size(rows))
        step = tf.cast(self.iterations + 1, variable.dtype)
        rate = (
            tf.cast(learning_rate, variable.dtype)
            * tf.sqrt(1.0 - tf.pow(tf.cast(self.beta_2, variable.dtype), step))
            / (1.0 - tf.pow(tf.cast(self.beta_1, variable.dtype), step))
        )
        momentum = self._momentums[self._get_variable_index(variable)]
        velocity = self._velocities[self._get_variable_index(variable)]
        new_momentum = (
            self.beta_1 * tf.gather(momentum.value, rows) + (1.0 - self.beta_1) * row_gradient
        )
        new_velocity = self.beta_2 * tf.gather(velocity.value, rows) + (
            1.0 - self.beta_2
        ) * tf.square(row_gradient)
        self.assign(momentum, tf.IndexedSlices(new_momentum, rows))
        self.assign(velocity, tf.IndexedSlices(new_velocity, rows))
        step_size = rate * new_momentum / (tf.sqrt(new_velocity) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(step_size, rows))


def build_network(
    n_features: int, n_classes: int, *, hidden_units: int, dropout: float
) -> keras.Model:
    """Sparse features -> hidden ReLU layer -> dropout -> class logits."""
    inputs = keras.Input(shape=(n_features,), sparse=True, name="features")
    hidden = SparseDense(hidden_units, name="l0")(inputs)
    hidden = keras.layers.ReLU(name="relu")(hidden)
    hidden = keras.layers.Dropout(dropout, name="dropout")(hidden)
    outputs = keras.layers.Dense(n_classes, name="l1")(hidden)
    return keras.Model(inputs, outputs)

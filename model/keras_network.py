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
        return _csr_product(local_inputs, used_kernel) + self.bias

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int]:
        return (input_shape[0], self.units)


def _csr_product(inputs: tf.SparseTensor, dense: tf.Tensor) -> tf.Tensor:
    """inputs @ dense through TensorFlow's CSR kernels, faster on the CPU than
    tf.sparse.sparse_dense_matmul both ways; the gradient flows to dense only. The gradient
    multiplies by the transposed matrix stored as its own CSR: each output row is then summed
    by one thread, in order (the kernel's transpose_a is not deterministic)."""
    # The CSR ops have no public module; tests/model/test_keras_network.py holds them to a
    # dense product.
    from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops as csr

    matrix = csr.CSRSparseMatrix(tf.sparse.reorder(inputs))
    transposed = csr.CSRSparseMatrix(tf.sparse.reorder(tf.sparse.transpose(inputs)))

    @tf.custom_gradient
    def product(dense: tf.Tensor) -> tuple[tf.Tensor, Any]:
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return csr.matmul(transposed, upstream)

        return csr.matmul(matrix, dense), gradient

    return product(dense)


class LazyAdam(keras.optimizers.Adam):
    """Adam that, for sparse gradients, updates only the rows present (the moments of others wait).

    Plain Adam would rewrite the whole first-layer kernel and both moments at every step. The
    rows present are copied into scratch variables, updated there by TensorFlow's fused Adam
    kernel (one pass over them; written out as operations, the same update makes a dozen
    passes, each writing a new array) and copied back: half the cost of a step.
    """

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        # Per matrix: scratch for the rows a step updates (the variable's, its two moments').
        self._row_scratch = [
            tuple(
                tf.Variable(
                    tf.zeros((0, *variable.shape[1:]), dtype=variable.dtype),
                    shape=tf.TensorShape([None, *variable.shape[1:]]),
                    trainable=False,
                )
                for _ in range(3)
            )
            if len(variable.shape) == 2
            else None
            for variable in var_list
        ]

    def update_step(
        self, gradient: tf.Tensor, variable: tf.Variable, learning_rate: float | tf.Tensor
    ) -> None:
        index = self._get_variable_index(variable)
        scratch = self._row_scratch[index]
        if not isinstance(gradient, tf.IndexedSlices) or scratch is None:
            super().update_step(gradient, variable, learning_rate)
            return
        rows, positions = tf.unique(gradient.indices)
        # SparseDense's gradients name each row once: summing repeats is rarely needed.
        row_gradient = tf.cond(
            tf.size(rows) < tf.size(gradient.indices),
            lambda: tf.math.unsorted_segment_sum(gradient.values, positions, tf.size(rows)),
            lambda: gradient.values,
        )
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        state = (variable, self._momentums[index], self._velocities[index])
        for rows_of, source in zip(scratch, state, strict=True):
            rows_of.assign(tf.gather(_resource(source), rows))
        tf.raw_ops.ResourceApplyAdam(
            var=scratch[0].handle,
            m=scratch[1].handle,
            v=scratch[2].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=row_gradient,
        )
        for rows_of, target in zip(scratch, state, strict=True):
            self.assign(target, tf.IndexedSlices(rows_of.value(), rows))


def _resource(variable: keras.Variable | tf.Variable) -> tf.Variable:
    """The TensorFlow variable itself (gathering from it reads only the rows asked for)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


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

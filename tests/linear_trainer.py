"""A training worker that runs the real training (features, fallback rule, calibration,
registry) with the linear network of tests/conftest.py in place of Keras: seconds, not the
minute TensorFlow takes to import and train."""

import sys

from model import train
from tests.conftest import linear_network

train._fit_network = linear_network  # type: ignore[assignment]
sys.exit(train.main())

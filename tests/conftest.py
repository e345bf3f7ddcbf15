"""Shared test setup: quiet TensorFlow, a tiny random image helper, and the CLI runner."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
